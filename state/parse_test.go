package state

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// fixture reads a file of testdata/mynodeone: ConfigMap name → data.
func fixture(t testing.TB, name string) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile("../testdata/mynodeone/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func inputOf(m map[string]map[string]string) Input {
	return Input{Registry: m[RegistryCM], Services: m[ServicesCM], Domains: m[DomainsCM], ClusterInfo: m[ClusterInfoCM]}
}

func problemTexts(m *Model, level Level) []string {
	var out []string
	for _, p := range m.Problems {
		if p.Level == level {
			out = append(out, p.String())
		}
	}
	return out
}

func hasProblem(t *testing.T, m *Model, level Level, parts ...string) {
	t.Helper()
	for _, p := range m.Problems {
		s := p.String()
		ok := p.Level == level
		for _, part := range parts {
			ok = ok && strings.Contains(s, part)
		}
		if ok {
			return
		}
	}
	t.Errorf("no %s problem with %q among:\n%s", level, parts, strings.Join(append(problemTexts(m, LevelInvalid), problemTexts(m, LevelWarning)...), "\n"))
}

func routesText(m *Model) string {
	var b strings.Builder
	for _, n := range m.Nodes() {
		for _, r := range m.Routes[n.Name] {
			fmt.Fprintf(&b, "%s %s -> %s (%s, %s)\n", n.Name, r.Host, r.URL(), r.Service, r.Via)
		}
	}
	return b.String()
}

func hostsText(m *Model) string {
	var lines []string
	for _, h := range m.Hosts {
		lines = append(lines, h.Line())
	}
	return strings.Join(lines, "\n")
}

// TestParseMyNodeOne: the ConfigMaps MyNodeOne's scripts wrote are read as
// MyNodeOne meant them, with no invalid entry.
func TestParseMyNodeOne(t *testing.T) {
	m := Parse(inputOf(fixture(t, "configmaps.json")))
	if inv := problemTexts(m, LevelInvalid); len(inv) > 0 {
		t.Errorf("MyNodeOne's data has invalid entries:\n%s", strings.Join(inv, "\n"))
	}
	var disp []string
	for _, n := range m.Entries {
		disp = append(disp, fmt.Sprintf("%s %s %s %s", n.Ref(), n.IP, n.Disposition, n.Status))
	}
	want := []string{
		`vps_nodes[0] "vps-edge-01" 100.86.188.1 managed failed`,
		`management_laptops[0] "Vinay-ThinkPad" 100.86.112.112 superseded pending_sync`,
		`management_laptops[1] "canada-pc" 100.76.150.207 control-plane active`,
		`management_laptops[2] "Vinay-ThinkPad" 100.86.112.113 managed active`,
	}
	if strings.Join(disp, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(disp, "\n"), strings.Join(want, "\n"))
	}
	if n, ok := m.Find("Vinay-ThinkPad"); !ok || n.IP.String() != "100.86.112.113" || n.SSHUser != "mno" {
		t.Errorf("Find(Vinay-ThinkPad) = %+v, %v", n, ok)
	}
	// routing.json alone decides: immich on its two domains on the listed VPS;
	// open-webui ("vps_nodes": []) and grafana ("domains": []) nowhere.
	if got, want := routesText(m), "vps-edge-01 photos.curiios.com -> http://100.122.68.206:80 (immich, routing)\n"+
		"vps-edge-01 photos.vinaysachdeva.com -> http://100.122.68.206:80 (immich, routing)\n"; got != want {
		t.Errorf("routes:\n%s\nwant:\n%s", got, want)
	}
	if got, want := hostsText(m), strings.Join([]string{
		"100.122.68.207\tchat.minicloud.local",
		"100.122.68.203\tgrafana.minicloud.local",
		"100.122.68.206\timmich.minicloud.local",
		"100.122.68.205\tminicloud.minicloud.local",
		"100.122.68.208\tminio.minicloud.local",
		"100.122.68.206\tphotos.minicloud.local",
	}, "\n"); got != want {
		t.Errorf("hosts:\n%s\nwant:\n%s", got, want)
	}
	hasProblem(t, m, LevelWarning, "domain-registry domains.json", "1 invalid escape", `Backup\share`)
	hasProblem(t, m, LevelWarning, `management_laptops[0] "Vinay-ThinkPad"`, "registered again later as management_laptops[2]", "100.86.112.113")
	hasProblem(t, m, LevelWarning, `management_laptops[1] "canada-pc"`, "ip: 100.76.150.207 is the control plane's own address")
	hasProblem(t, m, LevelWarning, `routing.json "kube-prometheus-stack-grafana": vps_nodes[1]: empty: ignored`)
	hasProblem(t, m, LevelWarning, `vps_nodes[0] "vps-edge-01": domain: none recorded`)
	if d := m.RawDomains["domains"].(map[string]any)["vinaysachdeva.com"].(map[string]any)["description"]; d != `Backup\share` {
		t.Errorf("description read as %q, want Backup\\share", d)
	}
	if len(m.VPS) != 1 || m.VPS[0].PublicIP.String() != "45.8.133.192" || m.VPS[0].Location != "contabo-germany" {
		t.Errorf("domains.json vps_nodes: %+v", m.VPS)
	}
}

// TestParseBlankDocument: MyNodeOne's " " document is empty, with a warning;
// routing.json next to it is still read.
func TestParseBlankDocument(t *testing.T) {
	f := fixture(t, "configmaps.json")
	f[DomainsCM] = fixture(t, "blank-domains.json")[DomainsCM]
	m := Parse(inputOf(f))
	hasProblem(t, m, LevelWarning, "domain-registry domains.json: blank document: read as empty")
	if len(m.Domains) != 0 || len(m.VPS) != 0 || len(m.Routing) != 3 {
		t.Errorf("domains %v, vps %v, routing %d entries", m.Domains, m.VPS, len(m.Routing))
	}
	if m.Invalid() {
		t.Errorf("invalid: %v", problemTexts(m, LevelInvalid))
	}
}

// clean is a small valid cluster the hostile cases start from.
func clean() map[string]any {
	return map[string]any{
		"registry": map[string]any{
			"vps_nodes": []any{
				map[string]any{"name": "vps-1", "ip": "100.64.0.1", "ssh_user": "mno", "domain": "example.com"},
				map[string]any{"name": "vps-2", "ip": "100.64.0.2", "domain": "example.org"},
			},
			"management_laptops": []any{map[string]any{"name": "laptop-1", "ip": "100.64.0.3", "ssh_port": 2222}},
			"worker_nodes":       []any{},
		},
		"services": map[string]any{
			"blog": map[string]any{"subdomain": "blog", "ip": "10.1.0.5", "port": 80, "public": true},
			"home": map[string]any{"subdomain": "@", "ip": "10.1.0.6", "port": 8080, "public": true},
			"wiki": map[string]any{"subdomain": "wiki", "ip": "10.1.0.7", "port": 80, "public": false},
			"shop": map[string]any{"subdomain": "shop", "ip": "10.1.0.8", "port": 443, "public": false},
		},
		"routing": map[string]any{
			"shop": map[string]any{"domains": []any{"shop.example.net"}, "vps_nodes": []any{"100.64.0.2"}},
		},
		"info": map[string]string{"cluster-name": "home", "cluster-domain": "home", "control-plane-ip": "100.64.0.100"},
	}
}

func input(t testing.TB, c map[string]any) Input {
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return Input{
		Registry:    map[string]string{RegistryKey: enc(c["registry"])},
		Services:    map[string]string{ServicesKey: enc(c["services"])},
		Domains:     map[string]string{DomainsKey: `{"domains":{},"vps_nodes":[]}`, RoutingKey: enc(c["routing"])},
		ClusterInfo: c["info"].(map[string]string),
	}
}

const catchAll = "a`) || PathPrefix(`/`) || Host(`b"

// TestHostileValues: each hostile value is one problem naming ConfigMap, key,
// entry and field, and the routes and hosts are exactly the clean model's
// (plus what the clean data would give without the hostile entry).
func TestHostileValues(t *testing.T) {
	base := Parse(input(t, clean()))
	if len(base.Problems) != 0 {
		t.Fatalf("the clean cluster has problems: %v", base.Problems)
	}
	svc := func(c map[string]any) map[string]any { return c["services"].(map[string]any) }
	vps := func(c map[string]any, i int) map[string]any {
		return c["registry"].(map[string]any)["vps_nodes"].([]any)[i].(map[string]any)
	}
	tests := []struct {
		name   string
		mutate func(c map[string]any)
		want   string // the problem, as Problem.String() contains it
		// nodes: the managed node names after; "" means the clean set.
		nodes string
	}{
		{"catch-all subdomain", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": catchAll, "ip": "10.1.0.9", "port": 80, "public": true}
		}, `service-registry services.json "evil": subdomain: "a` + "`" + `) || PathPrefix(`, ""},
		{"catch-all routing domain", func(c map[string]any) {
			c["routing"].(map[string]any)["wiki"] = map[string]any{"domains": []any{catchAll}, "vps_nodes": []any{"100.64.0.1"}}
		}, `domain-registry routing.json "wiki": domains[0]: "a`, ""},
		{"catch-all registry domain", func(c map[string]any) { vps(c, 1)["domain"] = catchAll },
			`sync-controller-registry registry.json vps_nodes[1] "vps-2": domain: "a`, "vps-1 laptop-1"},
		{"ip with newlines and END marker", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": "evil", "ip": "10.1.0.9\n# END mno\n6.6.6.6\tbank.com", "port": 80, "public": true}
		}, `services.json "evil": ip: "10.1.0.9\n# END mno\n6.6.6.6\tbank.com" is not an IP address`, ""},
		{"metadata address", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": "evil", "ip": "169.254.169.254", "port": 80, "public": true}
		}, `services.json "evil": ip: "169.254.169.254" is a link-local address`, ""},
		{"host name as ip", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": "evil", "ip": "attacker.example", "port": 80, "public": true}
		}, `"evil": ip: "attacker.example" is not an IP address`, ""},
		{"port -1", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": "evil", "ip": "10.1.0.9", "port": -1, "public": true}
		}, `"evil": port: -1 is not a TCP port`, ""},
		{"port 700000", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": "evil", "ip": "10.1.0.9", "port": 700000, "public": true}
		}, `"evil": port: 700000 is not a TCP port`, ""},
		{"port eighty", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": "evil", "ip": "10.1.0.9", "port": "eighty", "public": true}
		}, `"evil": port: "eighty" is not a port number`, ""},
		{"public as a string", func(c map[string]any) {
			svc(c)["evil"] = map[string]any{"subdomain": "evil", "ip": "10.1.0.9", "port": 80, "public": "yes"}
		}, `"evil": public: is a JSON string, want true or false`, ""},
		{"registry entry without name", func(c map[string]any) {
			r := c["registry"].(map[string]any)
			r["vps_nodes"] = append(r["vps_nodes"].([]any), map[string]any{"ip": "100.64.0.9", "domain": "example.net"})
		}, `registry.json vps_nodes[2]: name: missing: entry skipped`, ""},
		{"node ip injection", func(c map[string]any) { vps(c, 1)["ip"] = "100.64.0.2\n# END mno" },
			`vps_nodes[1] "vps-2": ip: "100.64.0.2\n# END mno" is not an IP address`, "vps-1 laptop-1"},
		{"node ip is a host name", func(c map[string]any) { vps(c, 1)["ip"] = "vps-2.example.com" },
			`vps_nodes[1] "vps-2": ip: "vps-2.example.com" is not an IP address`, "vps-1 laptop-1"},
		{"ssh_port out of range", func(c map[string]any) { vps(c, 1)["ssh_port"] = 70000 },
			`vps_nodes[1] "vps-2": ssh_port: 70000 is not a TCP port`, "vps-1 laptop-1"},
		{"node name injection", func(c map[string]any) { vps(c, 1)["name"] = "vps-2\nroot" },
			`vps_nodes[1] "vps-2\nroot": name: "vps-2\nroot" is not a node name`, "vps-1 laptop-1"},
		{"ssh_user with options", func(c map[string]any) { vps(c, 1)["ssh_user"] = "-oProxyCommand=sh" },
			`ssh_user: "-oProxyCommand=sh" is not a user name`, "vps-1 laptop-1"},
		{"entry is not an object", func(c map[string]any) {
			r := c["registry"].(map[string]any)
			r["worker_nodes"] = []any{"worker-1"}
		}, `registry.json worker_nodes[0]: is a JSON string, want an object`, ""},
		{"a-b and a.b", func(c map[string]any) {
			svc(c)["ab1"] = map[string]any{"subdomain": "a-b", "ip": "10.1.0.10", "port": 80, "public": true}
			svc(c)["ab2"] = map[string]any{"subdomain": "a.b", "ip": "10.1.0.11", "port": 80, "public": true}
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clean()
			tt.mutate(c)
			m := Parse(input(t, c))
			if tt.want != "" {
				found := false
				for _, p := range m.Problems {
					found = found || p.Level == LevelInvalid && strings.Contains(p.String(), tt.want)
				}
				if !found {
					t.Errorf("no invalid problem %q among %q", tt.want, problemTexts(m, LevelInvalid))
				}
				for _, p := range m.Problems {
					if strings.ContainsAny(p.String(), "\n\r") {
						t.Errorf("problem spans lines: %q", p.String())
					}
				}
			}
			var names []string
			for _, n := range m.Nodes() {
				names = append(names, n.Name)
			}
			wantNodes := tt.nodes
			if wantNodes == "" {
				wantNodes = "vps-1 vps-2 laptop-1"
			}
			if got := strings.Join(names, " "); got != wantNodes {
				t.Errorf("managed nodes %q, want %q", got, wantNodes)
			}
			if tt.name == "a-b and a.b" {
				keys := map[string]string{}
				for _, r := range m.Routes["vps-1"] {
					if prev, dup := keys[RouterKey(r.Host)]; dup {
						t.Errorf("%s and %s share a router key", prev, r.Host)
					}
					keys[RouterKey(r.Host)] = r.Host
				}
				if len(m.Routes["vps-1"]) != len(base.Routes["vps-1"])+2 {
					t.Errorf("routes of vps-1: %v", m.Routes["vps-1"])
				}
				return
			}
			// Every node still in the model has exactly its clean routes,
			// and every laptop its clean hosts.
			for _, n := range m.Nodes() {
				if fmt.Sprint(m.Routes[n.Name]) != fmt.Sprint(base.Routes[n.Name]) {
					t.Errorf("routes of %s:\n%v\nwant\n%v", n.Name, m.Routes[n.Name], base.Routes[n.Name])
				}
			}
			if hostsText(m) != hostsText(base) {
				t.Errorf("hosts:\n%s\nwant\n%s", hostsText(m), hostsText(base))
			}
		})
	}
}

// TestRoutingTable: MyNodeOne's rules, case by case.
func TestRoutingTable(t *testing.T) {
	m := Parse(input(t, clean()))
	if got, want := routesText(m), strings.Join([]string{
		"vps-1 blog.example.com -> http://10.1.0.5:80 (blog, public)",
		"vps-1 example.com -> http://10.1.0.6:8080 (home, public)",
		"vps-2 blog.example.org -> http://10.1.0.5:80 (blog, public)",
		"vps-2 example.org -> http://10.1.0.6:8080 (home, public)",
		"vps-2 shop.shop.example.net -> http://10.1.0.8:443 (shop, routing)",
	}, "\n")+"\n"; got != want {
		t.Errorf("routes:\n%s\nwant:\n%s", got, want)
	}
	c := clean()
	// A public service with a routing entry is served only where the entry says.
	c["routing"].(map[string]any)["blog"] = map[string]any{"domains": []any{"blog.net"}, "vps_nodes": []any{"100.64.0.1"}}
	// An entry with no VPS serves nowhere, public or not.
	c["routing"].(map[string]any)["home"] = map[string]any{"domains": []any{"home.net"}, "vps_nodes": []any{}}
	// A broken entry serves its (public) service nowhere.
	c["services"].(map[string]any)["docs"] = map[string]any{"subdomain": "docs", "ip": "10.1.0.12", "port": 80, "public": true}
	c["routing"].(map[string]any)["docs"] = map[string]any{"domains": "docs.net", "vps_nodes": []any{"100.64.0.1"}}
	// Two services on one host: the first by name.
	c["services"].(map[string]any)["blog2"] = map[string]any{"subdomain": "blog", "ip": "10.1.0.13", "port": 80, "public": true}
	m = Parse(input(t, c))
	if got, want := routesText(m), strings.Join([]string{
		"vps-1 blog.blog.net -> http://10.1.0.5:80 (blog, routing)",
		"vps-1 blog.example.com -> http://10.1.0.13:80 (blog2, public)",
		"vps-2 blog.example.org -> http://10.1.0.13:80 (blog2, public)",
		"vps-2 shop.shop.example.net -> http://10.1.0.8:443 (shop, routing)",
	}, "\n")+"\n"; got != want {
		t.Errorf("routes:\n%s\nwant:\n%s", got, want)
	}
	hasProblem(t, m, LevelInvalid, `routing.json "docs": domains: is a JSON string, want a list: its service is served nowhere`)
	// The same host from two services: reported, first by name kept.
	c = clean()
	c["services"].(map[string]any)["blog0"] = map[string]any{"subdomain": "blog", "ip": "10.1.0.14", "port": 80, "public": true}
	m = Parse(input(t, c))
	hasProblem(t, m, LevelWarning, `"blog0": subdomain: blog.example.com on vps-1 is also published by "blog": routed to "blog" (first by name)`)
	hasProblem(t, m, LevelWarning, `"blog0": subdomain: blog.home.local is also claimed by "blog" (10.1.0.5)`)
}

// TestRegistryQuirks: duplicates, ambiguous kinds, the control plane.
func TestRegistryQuirks(t *testing.T) {
	c := clean()
	r := c["registry"].(map[string]any)
	r["management_laptops"] = append(r["management_laptops"].([]any),
		map[string]any{"name": "laptop-1", "ip": "100.64.0.4"},        // re-registered after an IP change
		map[string]any{"name": "cp", "ip": "100.64.0.100"},            // the control plane
		map[string]any{"name": "vps-2", "ip": "100.64.0.5"},           // also a VPS name
		map[string]any{"name": "twin", "ip": "100.64.0.4", "x": true}, // same address, another name
	)
	m := Parse(input(t, c))
	var disp []string
	for _, n := range m.Entries {
		disp = append(disp, n.Ref()+" "+string(n.Disposition))
	}
	want := `vps_nodes[0] "vps-1" managed|vps_nodes[1] "vps-2" ambiguous|management_laptops[0] "laptop-1" superseded|` +
		`management_laptops[1] "laptop-1" managed|management_laptops[2] "cp" control-plane|management_laptops[3] "vps-2" ambiguous|management_laptops[4] "twin" managed`
	if got := strings.Join(disp, "|"); got != want {
		t.Errorf("dispositions:\n%s\nwant\n%s", got, want)
	}
	hasProblem(t, m, LevelInvalid, `vps_nodes[1] "vps-2": name: also registered as another kind (management_laptops[3] "vps-2")`)
	hasProblem(t, m, LevelWarning, `management_laptops[4] "twin": ip: 100.64.0.4 is also the address of management_laptops[1] "laptop-1"`)
	if n, _ := m.Find("laptop-1"); n.IP.String() != "100.64.0.4" || n.SSHPort != 22 {
		t.Errorf("laptop-1 is %v:%d, want the later entry", n.IP, n.SSHPort)
	}
}

func TestLenientReads(t *testing.T) {
	c := clean()
	c["services"].(map[string]any)["blog"].(map[string]any)["port"] = "80"
	in := input(t, c)
	in.Registry[RegistryKey] = strings.ReplaceAll(in.Registry[RegistryKey], ",", ", ") // spaces are fine
	in.Domains[DomainsKey] = `{"curiios.com": {"description": "C:\data"}}`             // flat, with a stray backslash
	m := Parse(in)
	hasProblem(t, m, LevelWarning, `"blog": port: the string "80": read as the number 80`)
	hasProblem(t, m, LevelWarning, `domains.json: flat layout`)
	hasProblem(t, m, LevelWarning, `domains.json: read leniently: 1 invalid escape`)
	if len(m.Domains) != 1 || m.Domains[0].Description != `C:\data` {
		t.Errorf("domains: %+v", m.Domains)
	}
	if s, _ := m.Service("blog"); s.Port != 80 {
		t.Errorf("blog port %d", s.Port)
	}
	in.Services[ServicesKey] = `{"a": 1,,}`
	m = Parse(in)
	hasProblem(t, m, LevelInvalid, `service-registry services.json: not valid JSON (at offset 9`)
	if len(m.Services) != 0 || len(m.Nodes()) != 3 {
		t.Errorf("a broken services.json: %d services, %d nodes", len(m.Services), len(m.Nodes()))
	}
	m = Parse(Input{})
	hasProblem(t, m, LevelWarning, "cluster-info: missing")
	if len(m.Entries)+len(m.Services)+len(m.Hosts) != 0 {
		t.Errorf("an empty cluster: %+v", m)
	}
}

// BenchmarkParse: the model of a 1000-node cluster (half VPS, half laptops)
// with twenty services, as bench/fixture.go builds it.
func BenchmarkParse(b *testing.B) {
	var vps, laptops []any
	for i := 0; i < 1000; i++ {
		e := map[string]any{"name": fmt.Sprintf("node-%d", i), "ip": fmt.Sprintf("127.1.%d.%d", i/250, i%250+1), "ssh_user": "root", "ssh_port": 2200 + i,
			"host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAib9fvRZPIrwuXQFLCVWnakuy2tvL7FG5rLvOJacov6", "status": "active"}
		if i%2 == 0 {
			e["domain"] = "example.com"
			vps = append(vps, e)
		} else {
			laptops = append(laptops, e)
		}
	}
	svc := map[string]any{}
	for i := 0; i < 20; i++ {
		svc[fmt.Sprintf("svc-%d", i)] = map[string]any{"subdomain": fmt.Sprintf("s%d", i), "ip": fmt.Sprintf("100.122.68.%d", 200+i), "port": 80, "public": i < 3}
	}
	reg, _ := json.Marshal(map[string]any{"vps_nodes": vps, "management_laptops": laptops})
	services, _ := json.Marshal(svc)
	in := Input{
		Registry:    map[string]string{RegistryKey: string(reg)},
		Services:    map[string]string{ServicesKey: string(services)},
		Domains:     map[string]string{DomainsKey: `{"domains":{},"vps_nodes":[]}`, RoutingKey: `{}`},
		ClusterInfo: map[string]string{ClusterDomainKey: "home", ControlPlaneIPKey: "100.64.0.1"},
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m := Parse(in); len(m.Nodes()) != 1000 || m.Invalid() {
			b.Fatalf("%d nodes, problems %v", len(m.Nodes()), m.Problems)
		}
	}
}
