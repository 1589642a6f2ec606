package state

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Parse reads the four ConfigMaps into the model, entry by entry: each entry
// is checked on its own, an invalid one is skipped with a problem naming
// ConfigMap, key, entry and field, and the rest is read. Parse does no I/O
// and never fails; what it could not use is in the model's Problems.
func Parse(in Input) *Model {
	p := &parser{m: &Model{Routing: map[string]Routing{}, Routes: map[string][]Route{}}}
	p.clusterInfo(in.ClusterInfo)
	p.registry(in.Registry)
	p.services(in.Services)
	p.domains(in.Domains)
	p.routing(in.Domains)
	p.resolveNodes()
	p.routes()
	p.hosts()
	return p.m
}

type parser struct{ m *Model }

func (p *parser) add(level Level, cm, key, entry, field, msg string) {
	p.m.Problems = append(p.m.Problems, Problem{Level: level, ConfigMap: cm, Key: key, Entry: entry, Field: field, Message: msg})
}

// object decodes data[key] as a JSON object; ok is false when there is
// nothing to read (missing, blank, broken — the last two with a problem).
func (p *parser) object(cm string, data map[string]string, key string) (map[string]any, bool) {
	text, present := data[key]
	if !present {
		return nil, false
	}
	v, rep, err := DecodeJSON(text)
	switch {
	case err != nil:
		p.add(LevelInvalid, cm, key, "", "", fmt.Sprintf("not valid JSON (%v): nothing in it is used", err))
		return nil, false
	case v == nil:
		p.add(LevelWarning, cm, key, "", "", "blank document: read as empty (MyNodeOne leaves one when jq had no input)")
		return nil, false
	case rep.Changed():
		p.add(LevelWarning, cm, key, "", "", "read leniently: "+rep.String())
	}
	obj, ok := v.(map[string]any)
	if !ok {
		p.add(LevelInvalid, cm, key, "", "", fmt.Sprintf("is a JSON %s, want an object: nothing in it is used", jsonType(v)))
		return nil, false
	}
	return obj, true
}

func (p *parser) clusterInfo(data map[string]string) {
	c := &p.m.Cluster
	c.Data = map[string]string{}
	if data == nil {
		p.add(LevelWarning, ClusterInfoCM, "", "", "", "missing: no cluster-domain (laptops and workers get no hosts block) and no control-plane-ip; `mno init` creates it")
		return
	}
	for k, v := range data {
		c.Data[k] = v
	}
	if v, ok := data[ClusterNameKey]; ok {
		if err := PlainText(v); err != nil {
			p.add(LevelInvalid, ClusterInfoCM, ClusterNameKey, "", "", err.Error()+": not used")
			delete(c.Data, ClusterNameKey)
		} else {
			c.Name = v
		}
	}
	switch v, ok := data[ClusterDomainKey]; {
	case !ok || v == "":
		p.add(LevelWarning, ClusterInfoCM, ClusterDomainKey, "", "", "missing: laptops and workers get no hosts block")
		delete(c.Data, ClusterDomainKey)
	case HostName(v) != nil:
		p.add(LevelInvalid, ClusterInfoCM, ClusterDomainKey, "", "", HostName(v).Error()+": laptops and workers get no hosts block")
		delete(c.Data, ClusterDomainKey)
	default:
		c.Domain = strings.ToLower(v)
	}
	switch v, ok := data[ControlPlaneIPKey]; {
	case !ok || v == "":
		p.add(LevelWarning, ClusterInfoCM, ControlPlaneIPKey, "", "", "missing: laptops' kubeconfig is not refreshed and the control plane is not recognised among the nodes")
		delete(c.Data, ControlPlaneIPKey)
	default:
		a, err := Addr(v, NodeAddr)
		if err != nil {
			p.add(LevelInvalid, ClusterInfoCM, ControlPlaneIPKey, "", "", err.Error()+": not used")
			delete(c.Data, ControlPlaneIPKey)
		} else {
			c.ControlPlaneIP = a
		}
	}
}

func (p *parser) registry(data map[string]string) {
	doc, ok := p.object(RegistryCM, data, RegistryKey)
	if !ok {
		return
	}
	p.m.RawRegistry = doc
	for _, k := range Kinds {
		v := doc[k.List]
		if v == nil {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			p.add(LevelInvalid, RegistryCM, RegistryKey, "", k.List, fmt.Sprintf("is a JSON %s, want a list: no %s node is read", jsonType(v), k.Kind))
			continue
		}
		for i, x := range list {
			p.m.Entries = append(p.m.Entries, p.node(k.Kind, k.List, i, x))
		}
	}
}

func (p *parser) node(kind Kind, list string, i int, x any) Node {
	n := Node{Kind: kind, List: list, Index: i, SSHUser: "root", SSHPort: 22, Disposition: Managed}
	obj, ok := x.(map[string]any)
	if !ok {
		n.Disposition, n.Reason = Invalid, "not a JSON object"
		p.add(LevelInvalid, RegistryCM, RegistryKey, n.Ref(), "", fmt.Sprintf("is a JSON %s, want an object: skipped", jsonType(x)))
		return n
	}
	n.Raw = obj
	bad := func(field string, err error) {
		p.add(LevelInvalid, RegistryCM, RegistryKey, n.Ref(), field, err.Error()+": entry skipped, never pushed to")
		if n.Disposition != Invalid {
			n.Disposition, n.Reason = Invalid, field+": "+err.Error()
		}
	}
	if s, err := requiredString(obj, "name"); err != nil {
		bad("name", err)
	} else if err := NodeName(s); err != nil {
		bad("name", err)
	} else {
		n.Name = s
	}
	if s, err := requiredString(obj, "ip"); err != nil {
		bad("ip", err)
	} else if a, err := Addr(s, NodeAddr); err != nil {
		bad("ip", err)
	} else {
		n.IP = a
	}
	if s, present, err := optionalString(obj, "ssh_user"); err != nil {
		bad("ssh_user", err)
	} else if present {
		if err := UserName(s); err != nil {
			bad("ssh_user", err)
		} else {
			n.SSHUser = s
		}
	}
	if v, ok := obj["ssh_port"]; ok && v != nil {
		if port, _, err := portValue(v); err != nil {
			bad("ssh_port", err)
		} else {
			n.SSHPort = port
		}
	}
	if s, present, err := optionalString(obj, "host_key"); err != nil {
		bad("host_key", err)
	} else if present {
		if err := HostKey(s); err != nil {
			bad("host_key", err)
		} else {
			n.HostKey = s
		}
	}
	if s, present, err := optionalString(obj, "domain"); err != nil {
		bad("domain", err)
	} else if present {
		if err := DomainName(s); err != nil {
			bad("domain", err)
		} else {
			n.Domain = strings.ToLower(s)
		}
	}
	if s, present, err := optionalString(obj, "public_ip"); err != nil {
		bad("public_ip", err)
	} else if present {
		if a, err := Addr(s, NodeAddr); err != nil {
			bad("public_ip", err)
		} else {
			n.PublicIP = a
		}
	}
	if v, ok := obj["labels"]; ok && v != nil {
		if labels, err := stringMap(v); err != nil {
			bad("labels", err)
		} else {
			n.Labels = labels
		}
	}
	n.Status = display(obj["status"])
	n.LastSync = display(obj["last_sync"])
	n.LastError = display(obj["last_error"])
	n.Registered = display(obj["registered"])
	n.Applied = display(obj["applied"])
	return n
}

// resolveNodes settles names used twice and recognises the control plane.
func (p *parser) resolveNodes() {
	es := p.m.Entries
	kindsOf := map[string]map[Kind]bool{}
	last := map[string]int{} // list/name → index in es of the last entry
	for i, n := range es {
		name, ok := n.Raw["name"].(string)
		if !ok || n.Raw == nil {
			continue
		}
		if kindsOf[name] == nil {
			kindsOf[name] = map[Kind]bool{}
		}
		kindsOf[name][n.Kind] = true
		last[n.List+"\x00"+name] = i
	}
	for i := range es {
		n := &es[i]
		name, ok := n.Raw["name"].(string)
		if !ok || n.Raw == nil {
			continue
		}
		if n.Disposition != Managed {
			continue
		}
		if len(kindsOf[name]) > 1 {
			var other []string
			for _, m := range es {
				if mn, _ := m.Raw["name"].(string); mn == name && m.Kind != n.Kind {
					other = append(other, m.Ref())
				}
			}
			p.add(LevelInvalid, RegistryCM, RegistryKey, n.Ref(), "name",
				fmt.Sprintf("also registered as another kind (%s): neither is synced until one is removed from the registry", strings.Join(other, ", ")))
			n.Disposition, n.Reason = Ambiguous, "name also registered as another kind"
			continue
		}
		if j := last[n.List+"\x00"+name]; j != i {
			later := es[j]
			p.add(LevelWarning, RegistryCM, RegistryKey, n.Ref(), "name",
				fmt.Sprintf("registered again later as %s (ip %s): this older entry (ip %s) is not synced (MyNodeOne re-registers a node after an address change)",
					later.Ref(), display(later.Raw["ip"]), display(n.Raw["ip"])))
			n.Disposition, n.Reason = Superseded, "superseded by "+later.Ref()
		}
	}
	cp := p.m.Cluster.ControlPlaneIP
	byAddr := map[string]int{}
	for i := range es {
		n := &es[i]
		if n.Disposition != Managed {
			continue
		}
		if cp.IsValid() && n.IP == cp {
			p.add(LevelWarning, RegistryCM, RegistryKey, n.Ref(), "ip",
				fmt.Sprintf("%s is the control plane's own address (cluster-info control-plane-ip): the control plane is not pushed to as a %s (MyNodeOne registers it as a laptop)", n.IP, n.Kind))
			n.Disposition, n.Reason = ControlPlane, "the control plane itself"
			continue
		}
		key := string(n.Kind) + "\x00" + n.IP.String()
		if j, ok := byAddr[key]; ok {
			p.add(LevelWarning, RegistryCM, RegistryKey, n.Ref(), "ip",
				fmt.Sprintf("%s is also the address of %s: one machine registered under two names, pushed to twice", n.IP, es[j].Ref()))
		} else {
			byAddr[key] = i
		}
	}
}

func (p *parser) services(data map[string]string) {
	doc, ok := p.object(ServicesCM, data, ServicesKey)
	if !ok {
		return
	}
	p.m.RawServices = doc
	for _, name := range sortedKeys(doc) {
		ref := quote(name)
		bad := false
		fail := func(field string, err error) {
			p.add(LevelInvalid, ServicesCM, ServicesKey, ref, field, err.Error()+": service skipped, never routed or named")
			bad = true
		}
		if err := ServiceName(name); err != nil {
			fail("", err)
			continue
		}
		obj, ok := doc[name].(map[string]any)
		if !ok {
			fail("", fmt.Errorf("is a JSON %s, want an object", jsonType(doc[name])))
			continue
		}
		s := Service{Name: name, Raw: obj}
		if sub, err := requiredString(obj, "subdomain"); err != nil {
			fail("subdomain", fmt.Errorf("%v (\"@\" or \"\" for the domain itself)", err))
		} else if err := Subdomain(sub); err != nil {
			fail("subdomain", err)
		} else if sub != "@" {
			s.Subdomain = strings.ToLower(sub)
		}
		if ip, err := requiredString(obj, "ip"); err != nil {
			fail("ip", err)
		} else if a, err := Addr(ip, BackendAddr); err != nil {
			fail("ip", err)
		} else {
			s.IP = a
		}
		if v, ok := obj["port"]; !ok || v == nil {
			// As MyNodeOne's scripts read it: named, but not routed.
			p.add(LevelWarning, ServicesCM, ServicesKey, ref, "port", "missing: named in /etc/hosts, not routed on any VPS")
		} else if port, lenient, err := portValue(v); err != nil {
			fail("port", err)
		} else {
			s.Port = port
			if lenient {
				p.add(LevelWarning, ServicesCM, ServicesKey, ref, "port", fmt.Sprintf("the string %s: read as the number %d", quote(v.(string)), port))
			}
		}
		switch v := obj["public"].(type) {
		case nil:
		case bool:
			s.Public = v
		default:
			fail("public", fmt.Errorf("is a JSON %s, want true or false", jsonType(obj["public"])))
		}
		s.Namespace = display(obj["namespace"])
		s.Service = display(obj["service"])
		if !bad {
			p.m.Services = append(p.m.Services, s)
		}
	}
}

func (p *parser) domains(data map[string]string) {
	doc, ok := p.object(DomainsCM, data, DomainsKey)
	if !ok {
		return
	}
	p.m.RawDomains = doc
	domains, hasD := doc["domains"]
	vps, hasV := doc["vps_nodes"]
	if !hasD && !hasV && len(doc) > 0 {
		p.add(LevelWarning, DomainsCM, DomainsKey, "", "", "flat layout (domains at the top level, as before MyNodeOne's migration): read as the domains")
		domains, vps = any(doc), nil
	}
	if domains != nil {
		obj, ok := domains.(map[string]any)
		if !ok {
			p.add(LevelInvalid, DomainsCM, DomainsKey, "", "domains", fmt.Sprintf("is a JSON %s, want an object: no domain is read", jsonType(domains)))
		}
		for _, d := range sortedKeys(obj) {
			ref := "domains[" + quote(d) + "]"
			if err := DomainName(d); err != nil {
				p.add(LevelInvalid, DomainsCM, DomainsKey, ref, "", err.Error()+": skipped")
				continue
			}
			e, _ := obj[d].(map[string]any)
			p.m.Domains = append(p.m.Domains, Domain{Name: strings.ToLower(d), Description: display(e["description"]), Status: display(e["status"])})
		}
	}
	if vps != nil {
		list, ok := vps.([]any)
		if !ok {
			p.add(LevelInvalid, DomainsCM, DomainsKey, "", "vps_nodes", fmt.Sprintf("is a JSON %s, want a list: no VPS is read", jsonType(vps)))
		}
		for i, x := range list {
			ref := "vps_nodes[" + strconv.Itoa(i) + "]"
			obj, ok := x.(map[string]any)
			if !ok {
				p.add(LevelInvalid, DomainsCM, DomainsKey, ref, "", fmt.Sprintf("is a JSON %s, want an object: skipped", jsonType(x)))
				continue
			}
			r := VPSRecord{Raw: obj}
			fail := func(field string, err error) {
				p.add(LevelInvalid, DomainsCM, DomainsKey, ref, field, err.Error()+": skipped")
				ok = false
			}
			if s, err := requiredString(obj, "tailscale_ip"); err != nil {
				fail("tailscale_ip", err)
			} else if a, err := Addr(s, NodeAddr); err != nil {
				fail("tailscale_ip", err)
			} else {
				r.TailscaleIP = a
			}
			if s, present, err := optionalString(obj, "public_ip"); err != nil {
				fail("public_ip", err)
			} else if present {
				if a, err := Addr(s, NodeAddr); err != nil {
					fail("public_ip", err)
				} else {
					r.PublicIP = a
				}
			}
			if s, present, err := optionalString(obj, "location"); err != nil {
				fail("location", err)
			} else if present {
				if err := PlainText(s); err != nil {
					fail("location", err)
				} else {
					r.Location = s
				}
			}
			if ok {
				p.m.VPS = append(p.m.VPS, r)
			}
		}
	}
}

func (p *parser) routing(data map[string]string) {
	doc, ok := p.object(DomainsCM, data, RoutingKey)
	if !ok {
		return
	}
	p.m.RawRouting = doc
	for _, name := range sortedKeys(doc) {
		ref := quote(name)
		if err := ServiceName(name); err != nil {
			p.add(LevelInvalid, DomainsCM, RoutingKey, ref, "", err.Error()+": ignored")
			continue
		}
		r := Routing{Service: name}
		broken := func(field string, err error) {
			p.add(LevelInvalid, DomainsCM, RoutingKey, ref, field, err.Error()+": its service is served nowhere until this entry is fixed")
			r.Broken = true
		}
		obj, ok := doc[name].(map[string]any)
		if !ok {
			broken("", fmt.Errorf("is a JSON %s, want an object", jsonType(doc[name])))
			p.m.Routing[name] = r
			continue
		}
		r.Raw = obj
		r.Strategy = display(obj["strategy"])
		items := func(field string) []any {
			v := obj[field]
			if v == nil {
				return nil
			}
			list, ok := v.([]any)
			if !ok {
				broken(field, fmt.Errorf("is a JSON %s, want a list", jsonType(v)))
			}
			return list
		}
		seen := map[string]bool{}
		for i, x := range items("domains") {
			field := "domains[" + strconv.Itoa(i) + "]"
			s, isStr := x.(string)
			switch {
			case isStr && s == "":
				p.add(LevelWarning, DomainsCM, RoutingKey, ref, field, "empty: ignored (MyNodeOne's trailing comma)")
			case !isStr:
				p.add(LevelInvalid, DomainsCM, RoutingKey, ref, field, fmt.Sprintf("is a JSON %s, want a domain: not served", jsonType(x)))
			case DomainName(s) != nil:
				p.add(LevelInvalid, DomainsCM, RoutingKey, ref, field, DomainName(s).Error()+": not served")
			case !seen[strings.ToLower(s)]:
				seen[strings.ToLower(s)] = true
				r.Domains = append(r.Domains, strings.ToLower(s))
			}
		}
		for i, x := range items("vps_nodes") {
			field := "vps_nodes[" + strconv.Itoa(i) + "]"
			s, isStr := x.(string)
			if isStr && s == "" {
				p.add(LevelWarning, DomainsCM, RoutingKey, ref, field, "empty: ignored (MyNodeOne's trailing comma)")
				continue
			}
			if !isStr {
				p.add(LevelInvalid, DomainsCM, RoutingKey, ref, field, fmt.Sprintf("is a JSON %s, want an IP address: ignored", jsonType(x)))
				continue
			}
			a, err := Addr(s, NodeAddr)
			if err != nil {
				p.add(LevelInvalid, DomainsCM, RoutingKey, ref, field, err.Error()+": ignored")
				continue
			}
			r.VPS = append(r.VPS, a)
		}
		if !r.Broken {
			r.Domains, r.VPS = nonNil(r.Domains), nonNilAddrs(r.VPS)
		}
		p.m.Routing[name] = r
		if _, listed := p.m.RawServices[name]; !listed {
			p.add(LevelWarning, DomainsCM, RoutingKey, ref, "", "names no service in service-registry: ignored")
		}
	}
}

// requiredString returns obj[key] as a string; missing, null and other types
// are errors.
func requiredString(obj map[string]any, key string) (string, error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return "", fmt.Errorf("missing")
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("is a JSON %s, want a string", jsonType(v))
	}
	return s, nil
}

// optionalString returns obj[key] as a string; present is false when it is
// missing, null or "".
func optionalString(obj map[string]any, key string) (s string, present bool, err error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return "", false, nil
	}
	s, ok = v.(string)
	if !ok {
		return "", false, fmt.Errorf("is a JSON %s, want a string", jsonType(v))
	}
	return s, s != "", nil
}

// portValue reads a port: a JSON integer, or (lenient) a string of decimal
// digits, as a hand edit may leave it.
func portValue(v any) (port int, lenient bool, err error) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s is not a TCP port (an integer 1-65535)", x)
		}
		if err := Port(n); err != nil {
			return 0, false, err
		}
		return int(n), false, nil
	case string:
		if !allDigits(x) || len(x) > 5 || len(x) > 1 && x[0] == '0' {
			return 0, false, fmt.Errorf("%s is not a port number", quote(x))
		}
		n, _ := strconv.ParseInt(x, 10, 64)
		if err := Port(n); err != nil {
			return 0, false, err
		}
		return int(n), true, nil
	}
	return 0, false, fmt.Errorf("is a JSON %s, want a port number", jsonType(v))
}

func stringMap(v any) (map[string]string, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is a JSON %s, want an object of strings", jsonType(v))
	}
	out := make(map[string]string, len(obj))
	for k, x := range obj {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s is a JSON %s, want a string", quote(k), jsonType(x))
		}
		out[k] = s
	}
	return out, nil
}

// display renders a status field for showing: strings as they are, null as
// "", anything else as JSON.
func display(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilAddrs(s []netip.Addr) []netip.Addr {
	if s == nil {
		return []netip.Addr{}
	}
	return s
}
