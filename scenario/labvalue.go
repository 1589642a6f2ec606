package scenario

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
	"github.com/mno-sh/mno/lab"
)

// Module describes the predeclared lab for `mno doc` (its value is made per
// lab by Value).
func Module() starkit.Module {
	return starkit.Module{
		Name:    "scenario",
		Doc:     starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"lab": starlark.None},
	}
}

// Value is the predeclared lab of scenarios run against cl, whose nodes were
// bootstrapped for user.
func Value(cl *lab.Cluster, user string) starlark.Value {
	byName := map[string]starlark.Value{}
	var all, vps, workers, laptops []starlark.Value
	for _, n := range cl.Nodes {
		v := starlarkstruct.FromStringDict(starlark.String("node"), starlark.StringDict{
			"name":        starlark.String(n.Name),
			"kind":        starlark.String(n.Kind),
			"addr":        starlark.String(n.Addr),
			"port":        starlark.MakeInt(n.Port),
			"host_key":    starlark.String(n.HostKey),
			"fingerprint": starlark.String(n.Fingerprint),
		})
		byName[n.Name] = v
		all = append(all, v)
		switch n.Kind {
		case lab.KindVPS:
			vps = append(vps, v)
		case lab.KindWorker:
			workers = append(workers, v)
		case lab.KindLaptop:
			laptops = append(laptops, v)
		}
	}
	list := func(vs []starlark.Value) *starlark.List {
		l := starlark.NewList(vs)
		l.Freeze()
		return l
	}
	nodes := cl.Nodes
	node := func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name string
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name); err != nil {
			return nil, err
		}
		if v, ok := byName[name]; ok {
			return v, nil
		}
		return nil, starkit.Errorf(b.Name(), "the lab has no node %q (it has %s)", name, cl.NodeNames())
	}
	v := starlarkstruct.FromStringDict(starlark.String("lab"), starlark.StringDict{
		"name":    starlark.String(cl.Name),
		"cp_addr": starlark.String(cl.Gateway),
		"user":    starlark.String(user),
		"nodes":   list(all),
		"vps":     list(vps),
		"workers": list(workers),
		"laptops": list(laptops),
		"node":    starlark.NewBuiltin("lab.node", node),
		"demo": starlarkstruct.FromStringDict(starlark.String("demo"), starlark.StringDict{
			"name": starlark.String(cl.Demo.Name),
			"node": starlark.String(cl.Demo.Node),
			"ip":   starlark.String(cl.Demo.Addr),
			"port": starlark.MakeInt(cl.Demo.Port),
		}),
		"http": starlark.NewBuiltin("lab.http", func(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return httpGet(t, b, args, kwargs, nodes)
		}),
	})
	v.Freeze()
	return v
}

// httpGet is lab.http: a GET from the control plane to a node's web ports,
// with the Host (and TLS server name) of a published service.
func httpGet(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, nodes []lab.Node) (starlark.Value, error) {
	var nodeName, host string
	path := "/"
	useTLS := true
	timeout := starkit.Duration{D: 5 * time.Second}
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "node", &nodeName, "host", &host, "path?", &path,
		"tls?", &useTLS, "timeout?", &timeout); err != nil {
		return nil, err
	}
	var addr string
	for _, n := range nodes {
		if n.Name == nodeName {
			addr = n.Addr
		}
	}
	if addr == "" {
		return nil, starkit.Errorf(b.Name(), "the lab has no node %q", nodeName)
	}
	scheme, port := "https", 443
	if !useTLS {
		scheme, port = "http", 80
	}
	endpoint := net.JoinHostPort(addr, strconv.Itoa(port))
	url := scheme + "://" + host + path
	client := &http.Client{
		Timeout: timeout.D,
		Transport: &http.Transport{
			// No ACME in a lab: Traefik serves its default certificate.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, endpoint)
			},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var status int
	var body, location string
	r := runctx.From(thread)
	_, err := r.Journal.Do(r.Ctx, journal.Op{Target: nodeName, Kind: "http", Desc: "GET " + url + " at " + endpoint,
		Pos: starkit.CallerPos(thread), Apply: func(ctx context.Context) (journal.Change, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return journal.Change{}, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return journal.Change{}, err
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return journal.Change{}, err
			}
			status, body, location = resp.StatusCode, string(data), resp.Header.Get("Location")
			return journal.Change{Note: fmt.Sprint(status)}, nil
		}})
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	return starlarkstruct.FromStringDict(starlark.String("response"), starlark.StringDict{
		"status":   starlark.MakeInt(status),
		"body":     starlark.String(body),
		"location": starlark.String(location),
	}), nil
}
