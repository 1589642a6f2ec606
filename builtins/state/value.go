package state

import (
	"encoding/json"
	"math/big"
	"net/netip"
	"sort"
	"strconv"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/starkit"
	"github.com/mno-sh/mno/state"
)

// modelValue is the model as a frozen Starlark struct.
func modelValue(m *state.Model) starlark.Value {
	var nodes, entries []starlark.Value
	byName := map[string]starlark.Value{}
	for _, n := range m.Entries {
		v := nodeValue(m, n)
		entries = append(entries, v)
		if n.Disposition == state.Managed {
			nodes = append(nodes, v)
			byName[n.Name] = v
		}
	}
	var hosts []starlark.Value
	for _, h := range m.Hosts {
		hosts = append(hosts, structOf("host", starlark.StringDict{
			"ip": starlark.String(h.IP.String()), "name": starlark.String(h.Name),
			"service": starlark.String(h.Service), "line": starlark.String(h.Line()),
		}))
	}
	var problems []starlark.Value
	for _, p := range m.Problems {
		problems = append(problems, structOf("problem", starlark.StringDict{
			"level": starlark.String(p.Level), "configmap": starlark.String(p.ConfigMap), "key": starlark.String(p.Key),
			"entry": starlark.String(p.Entry), "field": starlark.String(p.Field), "message": starlark.String(p.Message),
			"text": starlark.String(p.String()),
		}))
	}
	services := starlark.NewDict(len(m.Services))
	for _, s := range m.Services {
		services.SetKey(starlark.String(s.Name), goValue(s.Raw))
	}
	routing := starlark.NewDict(len(m.Routing))
	for _, name := range sortedRouting(m) {
		r := m.Routing[name]
		if r.Broken {
			continue
		}
		raw := map[string]any{}
		for k, v := range r.Raw {
			raw[k] = v
		}
		doms := make([]any, len(r.Domains))
		for i, d := range r.Domains {
			doms[i] = d
		}
		vps := make([]any, len(r.VPS))
		for i, a := range r.VPS {
			vps[i] = a.String()
		}
		raw["domains"], raw["vps_nodes"] = doms, vps
		routing.SetKey(starlark.String(name), goValue(raw))
	}
	domains := map[string]any{}
	doms := map[string]any{}
	rawDoms, _ := m.RawDomains["domains"].(map[string]any)
	if _, nested := m.RawDomains["domains"]; !nested {
		if _, v := m.RawDomains["vps_nodes"]; !v {
			rawDoms = m.RawDomains // MyNodeOne's flat layout
		}
	}
	for _, d := range m.Domains {
		for k, v := range rawDoms {
			if k == d.Name || lower(k) == d.Name {
				doms[d.Name] = v
			}
		}
		if doms[d.Name] == nil {
			doms[d.Name] = map[string]any{}
		}
	}
	var vpsRecords []any
	for _, v := range m.VPS {
		vpsRecords = append(vpsRecords, v.Raw)
	}
	if vpsRecords == nil {
		vpsRecords = []any{}
	}
	domains["domains"], domains["vps_nodes"] = doms, vpsRecords
	info := starlark.NewDict(len(m.Cluster.Data))
	for _, k := range sortedKeys(m.Cluster.Data) {
		info.SetKey(starlark.String(k), starlark.String(m.Cluster.Data[k]))
	}
	var registry starlark.Value = starlark.NewDict(0)
	if m.RawRegistry != nil {
		registry = goValue(m.RawRegistry)
	}
	v := structOf("state", starlark.StringDict{
		"nodes":            starlark.NewList(nodes),
		"entries":          starlark.NewList(entries),
		"hosts":            starlark.NewList(hosts),
		"problems":         starlark.NewList(problems),
		"services":         services,
		"routing":          routing,
		"domains":          goValue(domains),
		"info":             info,
		"registry":         registry,
		"cluster_name":     starlark.String(m.Cluster.Name),
		"cluster_domain":   starlark.String(m.Cluster.Domain),
		"control_plane_ip": starlark.String(addrString(m.Cluster.ControlPlaneIP)),
		"find": starlark.NewBuiltin("find", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &name); err != nil {
				return nil, err
			}
			if v, ok := byName[name]; ok {
				return v, nil
			}
			return starlark.None, nil
		}),
		"routes": starlark.NewBuiltin("routes", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var ip, domain string
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "ip", &ip, "domain?", &domain); err != nil {
				return nil, err
			}
			a, err := state.Addr(ip, state.NodeAddr)
			if err != nil {
				return nil, starkit.Errorf(b.Name(), "ip: %v", err)
			}
			if domain != "" {
				if err := state.DomainName(domain); err != nil {
					return nil, starkit.Errorf(b.Name(), "domain: %v", err)
				}
			}
			routes, _ := m.RoutesFor(a, domain)
			return routesValue(routes), nil
		}),
	})
	v.Freeze()
	return v
}

func nodeValue(m *state.Model, n state.Node) starlark.Value {
	labels := starlark.NewDict(len(n.Labels))
	for _, k := range sortedKeys(n.Labels) {
		labels.SetKey(starlark.String(k), starlark.String(n.Labels[k]))
	}
	var entry starlark.Value = starlark.NewDict(0)
	if n.Raw != nil {
		entry = goValue(n.Raw)
	}
	return structOf("node", starlark.StringDict{
		"kind":        starlark.String(n.Kind),
		"list":        starlark.String(n.List),
		"index":       starlark.MakeInt(n.Index),
		"name":        starlark.String(n.Name),
		"ip":          starlark.String(addrString(n.IP)),
		"ssh_user":    starlark.String(n.SSHUser),
		"ssh_port":    starlark.MakeInt(n.SSHPort),
		"host_key":    starlark.String(n.HostKey),
		"domain":      starlark.String(n.Domain),
		"public_ip":   starlark.String(addrString(n.PublicIP)),
		"labels":      labels,
		"status":      starlark.String(n.Status),
		"last_sync":   starlark.String(n.LastSync),
		"last_error":  starlark.String(n.LastError),
		"registered":  starlark.String(n.Registered),
		"applied":     starlark.String(n.Applied),
		"disposition": starlark.String(n.Disposition),
		"reason":      starlark.String(n.Reason),
		"entry":       entry,
		"routes":      routesValue(m.Routes[n.Name]),
	})
}

func routesValue(routes []state.Route) *starlark.List {
	out := make([]starlark.Value, len(routes))
	for i, r := range routes {
		out[i] = structOf("route", starlark.StringDict{
			"host":    starlark.String(r.Host),
			"service": starlark.String(r.Service),
			"name":    starlark.String(r.Service),
			"url":     starlark.String(r.URL()),
			"backend": starlark.String(r.Backend.String()),
			"domain":  starlark.String(r.Domain),
			"via":     starlark.String(r.Via),
			"key":     starlark.String(state.RouterKey(r.Host)),
		})
	}
	return starlark.NewList(out)
}

func structOf(name string, d starlark.StringDict) *starlarkstruct.Struct {
	return starlarkstruct.FromStringDict(starlark.String(name), d)
}

// goValue converts a decoded JSON value to Starlark (objects as dicts with
// sorted keys, numbers as int when integral).
func goValue(v any) starlark.Value {
	switch x := v.(type) {
	case nil:
		return starlark.None
	case bool:
		return starlark.Bool(x)
	case string:
		return starlark.String(x)
	case json.Number:
		if n, ok := new(big.Int).SetString(string(x), 10); ok {
			return starlark.MakeBigInt(n)
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return starlark.Float(f)
	case []any:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			elems[i] = goValue(e)
		}
		return starlark.NewList(elems)
	case map[string]any:
		d := starlark.NewDict(len(x))
		for _, k := range sortedKeys(x) {
			d.SetKey(starlark.String(k), goValue(x[k]))
		}
		return d
	}
	return starlark.None
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedRouting(m *state.Model) []string { return sortedKeys(m.Routing) }

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
