package state

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// The markers of mno's block in /etc/hosts.
const (
	HostsBegin = "# BEGIN mno (managed by mno sync; do not edit)"
	HostsEnd   = "# END mno"
)

// CheckRoutes verifies a rendered Traefik routes file before it is written:
// one YAML document without anchors, aliases, merge keys or custom tags, no
// duplicate key, only an http section; every router's rule exactly
// Host(`host`) for a host in want, named RouterKey(host) (or that and
// HTTPRouterSuffix), with no priority, its service's one server the
// expected backend; every host in want served over websecure; every
// middleware a router names defined. Extra routers, services or hosts are
// errors, so no input can add a rule.
func CheckRoutes(text string, want []Route) error {
	v, err := strictYAML(text)
	if err != nil {
		return err
	}
	if len(want) == 0 {
		if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
			return nil
		}
		return errors.New("no routes are published, yet the file configures something")
	}
	top, ok := v.(map[string]any)
	if !ok {
		return errors.New("the document is not a mapping")
	}
	if err := onlyKeys(top, "top level", "http"); err != nil {
		return err
	}
	http, ok := top["http"].(map[string]any)
	if !ok {
		return errors.New("no http section")
	}
	if err := onlyKeys(http, "http", "routers", "services", "middlewares"); err != nil {
		return err
	}
	routers, _ := http["routers"].(map[string]any)
	services, _ := http["services"].(map[string]any)
	middlewares, _ := http["middlewares"].(map[string]any)
	byKey := map[string]Route{}
	for _, r := range want {
		if err := HostName(r.Host); err != nil {
			return fmt.Errorf("route host: %v", err)
		}
		byKey[RouterKey(r.Host)] = r
		byKey[RouterKey(r.Host)+HTTPRouterSuffix] = r
	}
	secure := map[string]bool{}
	usedServices := map[string]bool{}
	for _, k := range sortedKeys(routers) {
		r, ok := byKey[k]
		if !ok {
			return fmt.Errorf("router %s routes no published host", quote(k))
		}
		rt, ok := routers[k].(map[string]any)
		if !ok {
			return fmt.Errorf("router %s is not a mapping", quote(k))
		}
		if err := onlyKeys(rt, "router "+quote(k), "rule", "service", "entryPoints", "tls", "middlewares"); err != nil {
			return err
		}
		if rule := rt["rule"]; rule != "Host(`"+r.Host+"`)" {
			return fmt.Errorf("router %s: rule %s, want exactly %s", quote(k), quoteAny(rule), quote("Host(`"+r.Host+"`)"))
		}
		svcName, _ := rt["service"].(string)
		svc, ok := services[svcName].(map[string]any)
		if !ok {
			return fmt.Errorf("router %s: service %s is not defined", quote(k), quoteAny(rt["service"]))
		}
		if err := checkBackend(svcName, svc, r); err != nil {
			return err
		}
		usedServices[svcName] = true
		eps, err := stringList(rt["entryPoints"])
		if err != nil || len(eps) == 0 {
			return fmt.Errorf("router %s: entryPoints must be a list of web and websecure", quote(k))
		}
		for _, ep := range eps {
			switch ep {
			case "websecure":
				secure[r.Host] = true
			case "web":
			default:
				return fmt.Errorf("router %s: unknown entry point %s", quote(k), quote(ep))
			}
		}
		if mws, ok := rt["middlewares"]; ok {
			names, err := stringList(mws)
			if err != nil {
				return fmt.Errorf("router %s: middlewares must be a list of names", quote(k))
			}
			for _, mw := range names {
				if _, ok := middlewares[mw]; !ok {
					return fmt.Errorf("router %s: middleware %s is not defined", quote(k), quote(mw))
				}
			}
		}
	}
	for _, r := range want {
		if !secure[r.Host] {
			return fmt.Errorf("host %s has no websecure router", r.Host)
		}
	}
	for _, s := range sortedKeys(services) {
		if !usedServices[s] {
			return fmt.Errorf("service %s is not used by any router", quote(s))
		}
	}
	return nil
}

func checkBackend(name string, svc map[string]any, r Route) error {
	lb, _ := svc["loadBalancer"].(map[string]any)
	if err := onlyKeys(svc, "service "+quote(name), "loadBalancer"); err != nil || lb == nil {
		return fmt.Errorf("service %s: want only a loadBalancer", quote(name))
	}
	servers, _ := lb["servers"].([]any)
	if len(servers) != 1 {
		return fmt.Errorf("service %s: want exactly one server, %s", quote(name), r.URL())
	}
	srv, _ := servers[0].(map[string]any)
	raw, _ := srv["url"].(string)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Path != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("service %s: server url %s is not http://<ip>:<port>", quote(name), quoteAny(srv["url"]))
	}
	ap, err := netip.ParseAddrPort(u.Host)
	if err != nil || ap != r.Backend {
		return fmt.Errorf("service %s: server url %s, want %s for %s", quote(name), quote(raw), r.URL(), r.Host)
	}
	if _, err := Addr(ap.Addr().String(), BackendAddr); err != nil {
		return fmt.Errorf("service %s: %v", quote(name), err)
	}
	return nil
}

// strictYAML decodes one YAML document, refusing what could smuggle
// structure past a reader: anchors, aliases, merge keys, custom tags, more
// than one document, duplicate keys.
func strictYAML(text string) (any, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, errors.New("more than one YAML document")
	}
	if err := plainYAML(&doc, 0); err != nil {
		return nil, err
	}
	var v any
	if err := doc.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	return v, nil
}

func plainYAML(n *yaml.Node, depth int) error {
	if depth > 32 {
		return errors.New("YAML nested too deeply")
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return errors.New("YAML anchors and aliases are not allowed")
	}
	switch n.Tag {
	case "", "!!str", "!!map", "!!seq", "!!int", "!!bool", "!!null", "!!float":
	default:
		return fmt.Errorf("YAML tag %s is not allowed", quote(n.Tag))
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && c.Value == "<<" && c.Tag == "!!merge" {
			return errors.New("YAML merge keys are not allowed")
		}
		if err := plainYAML(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func onlyKeys(m map[string]any, where string, allowed ...string) error {
	for _, k := range sortedKeys(m) {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("%s: unexpected key %s", where, quote(k))
		}
	}
	return nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("not a list")
	}
	out := make([]string, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, errors.New("not a string")
		}
		out[i] = s
	}
	return out, nil
}

func quoteAny(v any) string {
	if s, ok := v.(string); ok {
		return quote(s)
	}
	return fmt.Sprintf("%v", v)
}

// CheckHosts verifies a rendered /etc/hosts before it is written: with
// entries, exactly one line HostsBegin, then exactly those lines, then one
// line HostsEnd, and no other line that starts like a marker; without,
// no marker at all. Outside the block, new may only have dropped lines of
// old (legacy blocks, stray cluster names), never added one.
func CheckHosts(old, new string, want []string) error {
	for _, l := range want {
		ip, name, ok := strings.Cut(l, "\t")
		if !ok {
			return fmt.Errorf("hosts entry %s is not ip<TAB>name", quote(l))
		}
		a, err := Addr(ip, BackendAddr)
		if err != nil || a.String() != ip {
			return fmt.Errorf("hosts entry %s: the address is not a canonical IP address", quote(l))
		}
		if err := HostName(name); err != nil {
			return fmt.Errorf("hosts entry %s: %v", quote(l), err)
		}
	}
	if new != "" && !strings.HasSuffix(new, "\n") {
		return errors.New("the hosts file does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(new, "\n"), "\n")
	var begins, ends []int
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "# BEGIN mno") {
			begins = append(begins, i)
		}
		if strings.HasPrefix(s, "# END mno") {
			ends = append(ends, i)
		}
	}
	outside := lines
	if len(want) == 0 {
		if len(begins)+len(ends) > 0 {
			return errors.New("no entries, yet the file holds an mno marker")
		}
	} else {
		if len(begins) != 1 || len(ends) != 1 {
			return fmt.Errorf("want exactly one BEGIN and one END marker, found %d and %d", len(begins), len(ends))
		}
		b, e := begins[0], ends[0]
		if lines[b] != HostsBegin || lines[e] != HostsEnd || e < b {
			return errors.New("the block's markers are not exactly mno's, in order")
		}
		if got := lines[b+1 : e]; !slices.Equal(got, want) {
			return fmt.Errorf("the block holds %d line(s) other than the %d entries", len(got), len(want))
		}
		outside = append(append([]string{}, lines[:b]...), lines[e+1:]...)
	}
	// Outside the block: a subsequence of old's lines (blank lines aside).
	olds := strings.Split(old, "\n")
	j := 0
	for _, l := range outside {
		if strings.TrimSpace(l) == "" {
			continue
		}
		for j < len(olds) && olds[j] != l {
			j++
		}
		if j == len(olds) {
			return fmt.Errorf("line %s outside mno's block was not in the file before", quote(l))
		}
		j++
	}
	return nil
}

// SortedHosts returns the hosts of routes, sorted, for messages.
func SortedHosts(routes []Route) []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.Host
	}
	sort.Strings(out)
	return out
}
