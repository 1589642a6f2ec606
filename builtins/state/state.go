package state

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"net/url"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/builtins/kube"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
	"github.com/mno-sh/mno/state"
)

//go:embed doc.go
var docSrc []byte

// Module returns the state module.
func Module() starkit.Module {
	return starkit.Module{
		Name: "state",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"state": &starlarkstruct.Module{Name: "state", Members: starlark.StringDict{
			"read":               starlark.NewBuiltin("state.read", read),
			"parse":              starlark.NewBuiltin("state.parse", parse),
			"router_key":         starlark.NewBuiltin("state.router_key", routerKey),
			"check_routes":       starlark.NewBuiltin("state.check_routes", checkRoutes),
			"check_hosts":        starlark.NewBuiltin("state.check_hosts", checkHosts),
			"check_node":         starlark.NewBuiltin("state.check_node", checkNode),
			"valid":              starlark.NewBuiltin("state.valid", valid),
			"HOSTS_BEGIN":        starlark.String(state.HostsBegin),
			"HOSTS_END":          starlark.String(state.HostsEnd),
			"HTTP_ROUTER_SUFFIX": starlark.String(state.HTTPRouterSuffix),
		}}},
	}
}

// Read reads the four ConfigMaps of namespace through the run's cluster
// client (journaled reads at pos), parses them, and reports the problems to
// the run's journal. `mno state` and state.read() share it.
func Read(r *runctx.Run, pos, ns string) (*state.Model, error) {
	var in state.Input
	for _, x := range []struct {
		name string
		to   *map[string]string
	}{{state.RegistryCM, &in.Registry}, {state.ServicesCM, &in.Services}, {state.DomainsCM, &in.Domains}, {state.ClusterInfoCM, &in.ClusterInfo}} {
		data, found, err := kube.GetConfigMap(r, pos, ns, x.name)
		if err != nil {
			return nil, err
		}
		if found {
			*x.to = data
		}
	}
	m := state.Parse(in)
	r.Journal.Problems(pos, JournalProblems(m.Problems))
	return m, nil
}

// JournalProblems converts the model's problems for the journal.
func JournalProblems(ps []state.Problem) []journal.Problem {
	out := make([]journal.Problem, len(ps))
	for i, p := range ps {
		out[i] = journal.Problem{Level: string(p.Level), ConfigMap: p.ConfigMap, Key: p.Key, Entry: p.Entry, Field: p.Field, Message: p.Message}
	}
	return out
}

func read(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ns := kube.DefaultNamespace
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "namespace?", &ns); err != nil {
		return nil, err
	}
	m, err := Read(runctx.From(thread), starkit.CallerPos(thread), ns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return modelValue(m), nil
}

func parse(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var reg, svc, dom, info starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "registry?", &reg, "services?", &svc, "domains?", &dom, "cluster_info?", &info); err != nil {
		return nil, err
	}
	var in state.Input
	for _, x := range []struct {
		name string
		v    starlark.Value
		to   *map[string]string
	}{{"registry", reg, &in.Registry}, {"services", svc, &in.Services}, {"domains", dom, &in.Domains}, {"cluster_info", info, &in.ClusterInfo}} {
		if x.v == starlark.None {
			continue
		}
		d, err := starkit.StringDict(x.name, x.v)
		if err != nil {
			return nil, starkit.Errorf(b.Name(), "%v (want the ConfigMap's data: a dict of strings, or None)", err)
		}
		if d == nil {
			d = map[string]string{}
		}
		*x.to = d
	}
	return modelValue(state.Parse(in)), nil
}

func routerKey(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var host string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &host); err != nil {
		return nil, err
	}
	if err := state.HostName(host); err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	return starlark.String(state.RouterKey(host)), nil
}

func checkRoutes(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var text string
	var routes *starlark.List
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "text", &text, "routes", &routes); err != nil {
		return nil, err
	}
	want := make([]state.Route, 0, routes.Len())
	for i := 0; i < routes.Len(); i++ {
		host, err1 := attrString(routes.Index(i), "host")
		raw, err2 := attrString(routes.Index(i), "url")
		if err := errors.Join(err1, err2); err != nil {
			return nil, starkit.Errorf(b.Name(), "routes[%d]: %v", i, err)
		}
		u, err := url.Parse(raw)
		var ap netip.AddrPort
		if err == nil {
			ap, err = netip.ParseAddrPort(u.Host)
		}
		if err != nil {
			return nil, starkit.Errorf(b.Name(), "routes[%d]: url %q is not http://<ip>:<port>", i, raw)
		}
		want = append(want, state.Route{Host: host, Backend: ap})
	}
	if err := state.CheckRoutes(text, want); err != nil {
		return nil, starkit.Errorf(b.Name(), "the rendered routes file is refused, nothing was written: %v", err)
	}
	return starlark.String(text), nil
}

func checkHosts(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var old, new string
	var lines *starlark.List
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "old", &old, "new", &new, "lines", &lines); err != nil {
		return nil, err
	}
	want := make([]string, lines.Len())
	for i := range want {
		s, ok := starlark.AsString(lines.Index(i))
		if !ok {
			return nil, starkit.Errorf(b.Name(), "lines[%d] is a %s, want a string", i, lines.Index(i).Type())
		}
		want[i] = s
	}
	if err := state.CheckHosts(old, new, want); err != nil {
		return nil, starkit.Errorf(b.Name(), "the rendered hosts file is refused, nothing was written: %v", err)
	}
	return starlark.String(new), nil
}

func checkNode(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var kind string
	var entry *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "kind", &kind, "entry", &entry); err != nil {
		return nil, err
	}
	list := state.ListOf(state.Kind(kind))
	if list == "" {
		return nil, starkit.Errorf(b.Name(), "unknown node kind %q (want vps, worker or laptop)", kind)
	}
	doc := starlark.NewDict(1)
	doc.SetKey(starlark.String(list), starlark.NewList([]starlark.Value{entry}))
	text, err := starlark.Call(thread, starjson.Module.Members["encode"], starlark.Tuple{doc}, nil)
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "entry: %v", err)
	}
	m := state.Parse(state.Input{Registry: map[string]string{state.RegistryKey: string(text.(starlark.String))}})
	for _, p := range m.Problems {
		if p.Level == state.LevelInvalid && p.ConfigMap == state.RegistryCM {
			return nil, starkit.Errorf(b.Name(), "%s entry %s: %s", kind, p.Field, trimSkipped(p.Message))
		}
	}
	return starlark.None, nil
}

// trimSkipped drops what the model does with an invalid entry, which does
// not apply to one being registered.
func trimSkipped(msg string) string {
	const s = ": entry skipped, never pushed to"
	if len(msg) > len(s) && msg[len(msg)-len(s):] == s {
		return msg[:len(msg)-len(s)]
	}
	return msg
}

func valid(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var what string
	var v starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "what", &what, "value", &v); err != nil {
		return nil, err
	}
	var err error
	if what == "port" {
		n, ok := v.(starlark.Int)
		i, exact := n.Int64()
		if !ok || !exact {
			err = fmt.Errorf("%s is not a TCP port (an integer 1-65535)", v)
		} else {
			err = state.Port(i)
		}
	} else {
		s, ok := starlark.AsString(v)
		if !ok {
			return starlark.String(fmt.Sprintf("%s is a %s, want a string", v, v.Type())), nil
		}
		switch what {
		case "node_name":
			err = state.NodeName(s)
		case "host_name":
			err = state.HostName(s)
		case "domain":
			err = state.DomainName(s)
		case "subdomain":
			err = state.Subdomain(s)
		case "node_ip":
			_, err = state.Addr(s, state.NodeAddr)
		case "service_ip":
			_, err = state.Addr(s, state.BackendAddr)
		case "user":
			err = state.UserName(s)
		case "host_key":
			err = state.HostKey(s)
		case "service_name":
			err = state.ServiceName(s)
		default:
			return nil, starkit.Errorf(b.Name(), "unknown kind of value %q", what)
		}
	}
	if err != nil {
		return starlark.String(err.Error()), nil
	}
	return starlark.None, nil
}

func attrString(v starlark.Value, name string) (string, error) {
	h, ok := v.(starlark.HasAttrs)
	if !ok {
		return "", fmt.Errorf("a %s, want a route struct", v.Type())
	}
	x, err := h.Attr(name)
	if err != nil || x == nil {
		return "", fmt.Errorf("no field %s", name)
	}
	s, ok := starlark.AsString(x)
	if !ok {
		return "", fmt.Errorf("%s is a %s, want a string", name, x.Type())
	}
	return s, nil
}
