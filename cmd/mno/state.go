package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/urfave/cli/v2"

	statemod "github.com/mno-sh/mno/builtins/state"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/state"
)

func stateCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "`FORMAT`: text, or json"},
		&cli.StringFlag{Name: "namespace", Value: "kube-system", Usage: "where the four ConfigMaps are (`NS`)"},
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` (default: $KUBECONFIG, ~/.kube/config, /etc/rancher/k3s/k3s.yaml, in-cluster)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context `NAME`"},
	}
	return &cli.Command{
		Name:  "state",
		Usage: "show the cluster's state: nodes, where each service is served, problems",
		Description: "Reads the four ConfigMaps (sync-controller-registry, service-registry, domain-registry,\n" +
			"cluster-info) into the validated model every playbook uses, and prints it: the nodes (kind,\n" +
			"address, status, last sync, last error, and why an entry is not synced), the services and\n" +
			"the hosts each VPS serves them on (host → backend), the /etc/hosts names of laptops and\n" +
			"workers, and every problem: invalid entries (skipped, never written anywhere) and data read\n" +
			"leniently. `mno state check` exits 1 when an entry is invalid. `mno doc state` documents the\n" +
			"rules and the routing table.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			m, run, err := readState(c)
			if err != nil {
				return err
			}
			defer run.Close()
			creds, unenrolled, note := laptopCredentials(run, m)
			if c.String("output") == "json" {
				out := stateJSON(m)
				out["laptop_credentials"] = map[string]any{"enrolled": creds, "not_enrolled": unenrolled, "unknown": note}
				return writeJSON(c.App.Writer, out)
			}
			printState(c.App.Writer, m, func() { printLaptopCredentials(c.App.Writer, creds, unenrolled, note) })
			return nil
		},
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "exit 1 when any entry of the cluster's state is invalid (for use before a change and in CI)",
			Description: "Prints every problem of the cluster's state and exits 1 when one is invalid (an entry\n" +
				"sync would skip), 0 otherwise; --strict also fails on warnings (data read leniently, a\n" +
				"duplicate name, the control plane registered as a node).",
			Flags: append([]cli.Flag{&cli.BoolFlag{Name: "strict", Usage: "fail on warnings too"}}, flags...),
			Action: func(c *cli.Context) error {
				m, run, err := readState(c)
				if err != nil {
					return err
				}
				run.Close()
				bad := 0
				for _, p := range m.Problems {
					if p.Level == state.LevelInvalid || c.Bool("strict") {
						bad++
					}
				}
				if c.String("output") == "json" {
					if err := writeJSON(c.App.Writer, map[string]any{"v": 1, "ok": bad == 0, "problems": problemsJSON(m.Problems)}); err != nil {
						return err
					}
				} else {
					w := c.App.Writer
					for _, p := range m.Problems {
						fmt.Fprintf(w, "%-8s %s\n", p.Level, p.String())
					}
					inv, warn := counts(m)
					verdict := "ok"
					if bad > 0 {
						verdict = "FAILED"
					}
					fmt.Fprintf(w, "%s: %d node(s), %d service(s); %d invalid, %d warning(s)\n", verdict, len(m.Entries), len(m.Services), inv, warn)
				}
				if bad > 0 {
					return exitError{1}
				}
				return nil
			},
		}},
	}
}

// readState reads the model through the kube builtins' client, as a
// playbook's state.read() does.
// The caller closes the run.
func readState(c *cli.Context) (*state.Model, *runctx.Run, error) {
	if o := c.String("output"); o != "text" && o != "json" {
		return nil, nil, cli.Exit(fmt.Sprintf("state: --output must be text or json, not %q", o), 1)
	}
	cfg := configFrom(c)
	jr := journal.New(journal.Options{})
	run := runctx.New(c.Context, engine.NewRunID(), "mno state", false, jr, secret.NewRedactor(), cfg)
	m, err := statemod.Read(run, "mno state", c.String("namespace"))
	if err != nil {
		run.Close()
		return nil, nil, cli.Exit("state: "+err.Error(), 1)
	}
	return m, run, nil
}

func counts(m *state.Model) (invalid, warnings int) {
	for _, p := range m.Problems {
		if p.Level == state.LevelInvalid {
			invalid++
		} else {
			warnings++
		}
	}
	return
}

// printState prints the model; more prints further sections before the problems.
func printState(w io.Writer, m *state.Model, more ...func()) {
	cl := m.Cluster
	fmt.Fprintf(w, "CLUSTER %s  domain %s  control plane %s\n", orDash(cl.Name), orDash(cl.Domain), orDash(addr(cl.ControlPlaneIP)))

	fmt.Fprintf(w, "\nNODES\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tADDRESS\tSTATUS\tLAST SYNC\tLAST ERROR\tSYNCED")
	for _, n := range m.Entries {
		synced := "yes"
		if n.Disposition != state.Managed {
			synced = "no: " + string(n.Disposition) + " (" + n.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", nodeName(n), n.Kind, nodeAddr(n), orDash(show(n.Status, 20)),
			orDash(show(n.LastSync, 25)), orDash(show(firstLine(n.LastError), 50)), synced)
	}
	if len(m.Entries) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()

	fmt.Fprintf(w, "\nSERVICES\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSUBDOMAIN\tBACKEND\tPUBLIC\tROUTING.JSON\tSERVED ON")
	for _, s := range m.Services {
		sub := s.Subdomain
		if sub == "" {
			sub = "@"
		}
		routing := "-"
		if r, ok := m.Routing[s.Name]; ok {
			switch {
			case r.Broken:
				routing = "broken: served nowhere"
			default:
				routing = fmt.Sprintf("%s on %s", orNone(r.Domains), orNone(addrs(r.VPS)))
			}
		}
		public := "no"
		if s.Public {
			public = "yes"
		}
		var served []string
		on := m.ServedOn(s.Name)
		for _, vps := range sortedKeys(on) {
			served = append(served, fmt.Sprintf("%s (%d)", vps, len(on[vps])))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, sub, s.Backend(), public, routing, orDash(strings.Join(served, ", ")))
	}
	if len(m.Services) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()

	fmt.Fprintf(w, "\nROUTES (host → backend, per VPS)\n")
	any := false
	for _, n := range m.Entries {
		if n.Kind != state.VPS || n.Disposition != state.Managed {
			continue
		}
		any = true
		fmt.Fprintf(w, "%s (%s, domain %s)\n", n.Name, n.IP, orDash(n.Domain))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range m.Routes[n.Name] {
			via := "public"
			if r.Via == "routing" {
				via = "routing.json"
			}
			fmt.Fprintf(tw, "  %s\t→ %s\t%s (%s)\n", r.Host, r.URL(), r.Service, via)
		}
		if len(m.Routes[n.Name]) == 0 {
			fmt.Fprintln(tw, "  (no routes)")
		}
		tw.Flush()
	}
	if !any {
		fmt.Fprintln(w, "(no VPS)")
	}

	fmt.Fprintf(w, "\nHOSTS (/etc/hosts of laptops and workers)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, h := range m.Hosts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", h.IP, h.Name, h.Service)
	}
	if len(m.Hosts) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	tw.Flush()

	for _, f := range more {
		f()
	}

	inv, warn := counts(m)
	fmt.Fprintf(w, "\nPROBLEMS (%d invalid: skipped, never written anywhere; %d warning(s))\n", inv, warn)
	for _, p := range m.Problems {
		fmt.Fprintf(w, "  %-8s %s\n", p.Level, p.String())
	}
	if len(m.Problems) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
}

func stateJSON(m *state.Model) map[string]any {
	var nodes []map[string]any
	for _, n := range m.Entries {
		name, _ := n.Raw["name"].(string)
		ip, _ := n.Raw["ip"].(string)
		e := map[string]any{
			"kind": n.Kind, "list": n.List, "index": n.Index, "name": name, "ip": ip,
			"status": n.Status, "last_sync": n.LastSync, "last_error": n.LastError,
			"disposition": n.Disposition, "synced": n.Disposition == state.Managed,
		}
		if n.Reason != "" {
			e["reason"] = n.Reason
		}
		if n.Disposition == state.Managed {
			e["ssh_user"], e["ssh_port"] = n.SSHUser, n.SSHPort
			if n.Domain != "" {
				e["domain"] = n.Domain
			}
		}
		nodes = append(nodes, e)
	}
	var services []map[string]any
	for _, s := range m.Services {
		e := map[string]any{"name": s.Name, "subdomain": s.Subdomain, "ip": s.IP.String(), "port": s.Port, "public": s.Public, "routing": nil}
		if r, ok := m.Routing[s.Name]; ok {
			e["routing"] = map[string]any{"domains": r.Domains, "vps_nodes": addrs(r.VPS), "broken": r.Broken}
		}
		var served []map[string]any
		for _, n := range m.Entries {
			for _, r := range m.Routes[n.Name] {
				if r.Service == s.Name && n.Disposition == state.Managed {
					served = append(served, map[string]any{"vps": n.Name, "host": r.Host, "url": r.URL(), "via": r.Via})
				}
			}
		}
		e["served"] = nonNil(served)
		services = append(services, e)
	}
	routes := map[string]any{}
	for name, rs := range m.Routes {
		var list []map[string]any
		for _, r := range rs {
			list = append(list, map[string]any{"host": r.Host, "service": r.Service, "url": r.URL(), "router": state.RouterKey(r.Host), "via": r.Via})
		}
		routes[name] = nonNil(list)
	}
	var hosts []map[string]any
	for _, h := range m.Hosts {
		hosts = append(hosts, map[string]any{"ip": h.IP.String(), "name": h.Name, "service": h.Service})
	}
	inv, warn := counts(m)
	return map[string]any{
		"v":       1,
		"cluster": map[string]any{"name": m.Cluster.Name, "domain": m.Cluster.Domain, "control_plane_ip": addr(m.Cluster.ControlPlaneIP)},
		"nodes":   nonNil(nodes), "services": nonNil(services), "routes": routes, "hosts": nonNil(hosts),
		"problems": problemsJSON(m.Problems), "invalid": inv, "warnings": warn,
	}
}

func problemsJSON(ps []state.Problem) []state.Problem {
	if ps == nil {
		return []state.Problem{}
	}
	return ps
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// nodeName shows an entry's name: as it is when valid, quoted otherwise (it
// may hold anything, terminal escapes included).
func nodeName(n state.Node) string {
	if n.Name != "" {
		return n.Name
	}
	if s, ok := n.Raw["name"].(string); ok {
		return show(s, 30)
	}
	return "(no name)"
}

func nodeAddr(n state.Node) string {
	if n.IP.IsValid() {
		return n.IP.String()
	}
	if s, ok := n.Raw["ip"].(string); ok {
		return show(s, 30)
	}
	return "-"
}

// show renders untrusted text on one line: as it is when short and
// printable, Go-quoted (and cut) otherwise.
func show(s string, max int) string {
	plain := len(s) <= max
	for _, r := range s {
		plain = plain && unicode.IsPrint(r) && r != '"'
	}
	if plain {
		return s
	}
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrs(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
