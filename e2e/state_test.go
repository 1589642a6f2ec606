package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/traefik/traefiktest"
)

const (
	routesPath = "/etc/traefik/dynamic/mno-routes.yml"
	catchAll   = "a`) || PathPrefix(`/`) || Host(`b"
)

// servedBy starts, inside vps, a real Traefik on the configuration add-vps
// wrote and HTTP backends on the VPS's own address at ports; it returns a
// GET through Traefik: status and body.
func servedBy(t *testing.T, vps *hosts.Host, ports ...string) func(host string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	bin, _ := os.Executable()
	for _, port := range ports {
		be := vps.Command(ctx, true, bin)
		be.Env = append(os.Environ(), backendEnv+"="+vps.Addr+":"+port)
		if err := be.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Process.Kill(); be.Wait() })
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, vps, "/etc/traefik/traefik.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["providers"].(map[string]any)["providersThrottleDuration"] = "100ms"
	testCfg, _ := yaml.Marshal(cfg)
	if err := vps.WriteFile("/etc/traefik-test.yml", testCfg, 0o644); err != nil {
		t.Fatal(err)
	}
	tr := vps.Command(ctx, true, traefiktest.Binary(t), "--configFile=/etc/traefik-test.yml")
	var trLog strings.Builder
	tr.Stdout, tr.Stderr = &trLog, &trLog
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Process.Kill()
		tr.Wait()
		if t.Failed() {
			t.Logf("traefik log:\n%s", trLog.String())
		}
	})
	return func(host string) (int, string) {
		c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(vps.Addr, "443"))
			},
		}}
		req, _ := http.NewRequest("GET", "https://"+vps.Addr+"/", nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

// problems returns the "problem" events of a run's JSONL output.
func problems(t *testing.T, r result) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if ev["type"] == "problem" {
			out = append(out, ev)
		}
	}
	return out
}

func hasProblemEvent(evs []map[string]any, level, cm, key, entry, field string) bool {
	for _, ev := range evs {
		if ev["level"] == level && ev["configmap"] == cm && ev["key"] == key && ev["entry"] == entry && (ev["field"] == field || field == "" && ev["field"] == nil) {
			return true
		}
	}
	return false
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyJSON(t *testing.T, v any) map[string]any {
	var out map[string]any
	if err := json.Unmarshal([]byte(jsonText(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSyncHostileValues: each hostile value in the ConfigMaps is skipped
// with a problem naming ConfigMap, key, entry and field (in the report and
// the JSON events); every VPS's routes file and every laptop's and worker's
// /etc/hosts stay exactly as a clean run left them, and the real Traefik
// still serves the other services — no catch-all takes over.
func TestSyncHostileValues(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2", "laptop-1", "worker-1")
	e.initCluster("10.0.0.1")
	v1, v2, w := e.host("vps-1"), e.host("vps-2"), e.host("worker-1")
	services := map[string]any{
		"blog": map[string]any{"subdomain": "blog", "ip": v1.Addr, "port": 18080, "public": true},
		"home": map[string]any{"subdomain": "@", "ip": v1.Addr, "port": 18081, "public": true},
		"shop": map[string]any{"subdomain": "shop", "ip": v1.Addr, "port": 18080, "public": false},
		"wiki": map[string]any{"subdomain": "wiki", "ip": "10.0.0.7", "port": 80, "public": false},
	}
	routing := map[string]any{"shop": map[string]any{"domains": []any{"shop.example.net"}, "vps_nodes": []any{v2.Addr}}}
	e.setServices(services)
	addNodesWithKubeconfig(t, e)
	reg := e.registry()
	reg["worker_nodes"] = []any{map[string]any{"name": "worker-1", "ip": w.Addr, "ssh_user": "mno", "ssh_port": 22, "host_key": w.HostKey}}
	setJSON := func(cm, key string, v any) {
		data := e.configMap(cm)
		if data == nil {
			data = map[string]string{}
		}
		data[key] = jsonText(t, v)
		e.setConfigMap(cm, data)
	}
	setJSON("sync-controller-registry", "registry.json", reg)
	setJSON("domain-registry", "routing.json", routing)
	e.mustRun("sync")
	cleanReg := e.registry()
	files := map[*hosts.Host]string{v1: routesPath, v2: routesPath, e.host("laptop-1"): "/etc/hosts", w: "/etc/hosts"}
	clean := map[*hosts.Host]string{}
	for h, p := range files {
		clean[h] = readFile(t, h, p)
	}
	if !strings.Contains(clean[v2], "Host(`shop.shop.example.net`)") || strings.Contains(clean[v1], "shop") {
		t.Fatalf("routing.json not applied:\nvps-1:\n%s\nvps-2:\n%s", clean[v1], clean[v2])
	}
	if !strings.Contains(clean[w], "10.0.0.7\twiki.home.local") {
		t.Fatalf("worker's hosts:\n%s", clean[w])
	}
	get := servedBy(t, v1, "18080", "18081")
	waitFor(t, "blog.example.test through Traefik", func() bool {
		code, body := get("blog.example.test")
		return code == 200 && strings.Contains(body, v1.Addr+":18080 saw host blog.example.test")
	}, &strings.Builder{})

	svc := func(extra map[string]any) map[string]any {
		out := copyJSON(t, services)
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	evil := func(sub, ip string, port any) map[string]any {
		return map[string]any{"evil": map[string]any{"subdomain": sub, "ip": ip, "port": port, "public": true}}
	}
	type want struct{ cm, key, entry, field string }
	cases := []struct {
		name     string
		services map[string]any
		routing  func(map[string]any)
		registry func(map[string]any)
		want     []want
	}{
		{name: "catch-all subdomain", services: svc(evil(catchAll, v1.Addr, 18080)),
			want: []want{{"service-registry", "services.json", `"evil"`, "subdomain"}}},
		{name: "catch-all routing domain", routing: func(r map[string]any) {
			r["shop"].(map[string]any)["domains"] = []any{"shop.example.net", catchAll}
			r["shop"].(map[string]any)["vps_nodes"] = []any{v2.Addr, v1.Addr + "\n# END mno"}
		}, want: []want{{"domain-registry", "routing.json", `"shop"`, "domains[1]"}, {"domain-registry", "routing.json", `"shop"`, "vps_nodes[1]"}}},
		{name: "catch-all registry domain", registry: func(r map[string]any) {
			r["vps_nodes"].([]any)[1].(map[string]any)["domain"] = catchAll
		}, want: []want{{"sync-controller-registry", "registry.json", `vps_nodes[1] "vps-2"`, "domain"}}},
		{name: "ip with newlines and END marker", services: svc(evil("evil", v1.Addr+"\n# END mno\n6.6.6.6\tbank.example.com", 18080)),
			want: []want{{"service-registry", "services.json", `"evil"`, "ip"}}},
		{name: "metadata address", services: svc(evil("evil", "169.254.169.254", 80)),
			want: []want{{"service-registry", "services.json", `"evil"`, "ip"}}},
		{name: "host name as ip", services: svc(evil("evil", "attacker.example.com", 80)),
			want: []want{{"service-registry", "services.json", `"evil"`, "ip"}}},
		{name: "bad ports", services: svc(map[string]any{
			"p1": map[string]any{"subdomain": "p1", "ip": v1.Addr, "port": -1, "public": true},
			"p2": map[string]any{"subdomain": "p2", "ip": v1.Addr, "port": 700000, "public": true},
			"p3": map[string]any{"subdomain": "p3", "ip": v1.Addr, "port": "eighty", "public": true},
		}), want: []want{{"service-registry", "services.json", `"p1"`, "port"}, {"service-registry", "services.json", `"p2"`, "port"}, {"service-registry", "services.json", `"p3"`, "port"}}},
		{name: "registry entry without name", registry: func(r map[string]any) {
			r["vps_nodes"] = append(r["vps_nodes"].([]any), map[string]any{"ip": "10.213.250.9", "ssh_user": "mno", "domain": "example.org"})
		}, want: []want{{"sync-controller-registry", "registry.json", "vps_nodes[2]", "name"}}},
		{name: "node ip injection", registry: func(r map[string]any) {
			r["worker_nodes"].([]any)[0].(map[string]any)["ip"] = w.Addr + "\n# END mno"
		}, want: []want{{"sync-controller-registry", "registry.json", `worker_nodes[0] "worker-1"`, "ip"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.services
			if s == nil {
				s = services
			}
			rt := copyJSON(t, routing)
			if c.routing != nil {
				c.routing(rt)
			}
			rg := copyJSON(t, cleanReg)
			if c.registry != nil {
				c.registry(rg)
			}
			setJSON("service-registry", "services.json", s)
			setJSON("domain-registry", "routing.json", rt)
			setJSON("sync-controller-registry", "registry.json", rg)
			r := e.run("sync")
			if r.exit != 0 {
				t.Fatalf("sync exit %d, want 0: one bad entry must not stop the rest", r.exit)
			}
			evs := problems(t, r)
			for _, wt := range c.want {
				if !hasProblemEvent(evs, "invalid", wt.cm, wt.key, wt.entry, wt.field) {
					t.Errorf("no invalid problem %v among the events:\n%s", wt, jsonText(t, evs))
				}
			}
			if !strings.Contains(r.stderr, "problem (invalid): "+c.want[0].cm+" "+c.want[0].key) || !strings.Contains(r.stderr, "PROBLEMS in the cluster state") {
				t.Errorf("the report does not name the problem:\n%s", r.stderr)
			}
			for h, p := range files {
				if got := readFile(t, h, p); got != clean[h] {
					t.Errorf("%s:%s differs from the clean run's:\n%s\nclean:\n%s", h.Name, p, got, clean[h])
				}
			}
			if code, body := get("blog.example.test"); code != 200 || !strings.Contains(body, v1.Addr+":18080 saw host blog.example.test") {
				t.Errorf("blog.example.test: %d %s", code, body)
			}
			if code, body := get("example.test"); code != 200 || !strings.Contains(body, v1.Addr+":18081") {
				t.Errorf("example.test: %d %s", code, body)
			}
			for _, host := range []string{"b", "anything.example.test", "evil.example.test"} {
				if code, body := get(host); code != 404 {
					t.Errorf("%s answered %d (%s): a hostile route is served", host, code, body)
				}
			}
		})
	}

	// MyNodeOne's data and damaged hosts blocks are repaired to exactly the
	// clean block: the data is clean again, the files too.
	setJSON("service-registry", "services.json", services)
	setJSON("domain-registry", "routing.json", routing)
	setJSON("sync-controller-registry", "registry.json", cleanReg)
	l := e.host("laptop-1")
	block := clean[l][strings.Index(clean[l], "# BEGIN mno"):]
	before := strings.TrimSuffix(clean[l][:strings.Index(clean[l], "# BEGIN mno")], "\n")
	for name, damaged := range map[string]string{
		"END missing":       before + "\n" + strings.TrimSuffix(block, "# END mno\n"),
		"duplicate BEGIN":   before + "\n" + strings.Replace(block, "\n", "\n# BEGIN mno (managed by mno sync; do not edit)\n", 1),
		"injected END":      before + "\n" + strings.Replace(block, "# END mno\n", "10.0.0.9\n# END mno\n6.6.6.6\tbank.example.com\n# END mno\n", 1),
		"block in the data": before + "\n" + block + "# BEGIN mno\n6.6.6.6\tbank.example.com\n# END mno\n",
	} {
		if err := l.WriteFile("/etc/hosts", []byte(damaged), 0o644); err != nil {
			t.Fatal(err)
		}
		e.mustRun("sync", "only=laptop-1")
		if got := readFile(t, l, "/etc/hosts"); got != clean[l] {
			t.Errorf("%s: the hosts file was not repaired exactly:\n%s\nwant:\n%s", name, got, clean[l])
		}
	}
}

// TestSyncRouterKeysPerHost: a-b.example.test and a.b.example.test get a
// router each (they shared one before), and Traefik serves both, each from
// its own backend.
func TestSyncRouterKeysPerHost(t *testing.T) {
	e := newEnv(t, "vps-1")
	e.initCluster("10.0.0.1")
	v1 := e.host("vps-1")
	e.setServices(map[string]any{
		"x": map[string]any{"subdomain": "a-b", "ip": v1.Addr, "port": 18080, "public": true},
		"y": map[string]any{"subdomain": "a.b", "ip": v1.Addr, "port": 18081, "public": true},
	})
	v1.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hostsRunning)
	e.mustRun("add-vps", "name=vps-1", "address="+v1.Addr, "domain=example.test", "email=ops@example.test", "host_key="+v1.HostKey)
	var routes map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, v1, routesPath)), &routes); err != nil {
		t.Fatal(err)
	}
	routers := routes["http"].(map[string]any)["routers"].(map[string]any)
	if len(routers) != 4 || routers["mno-a--b-example-test"] == nil || routers["mno-a-b-example-test"] == nil {
		t.Fatalf("routers: %v", routers)
	}
	get := servedBy(t, v1, "18080", "18081")
	waitFor(t, "both hosts served", func() bool {
		c1, b1 := get("a-b.example.test")
		c2, b2 := get("a.b.example.test")
		return c1 == 200 && c2 == 200 && strings.Contains(b1, ":18080 saw host a-b.example.test") && strings.Contains(b2, ":18081 saw host a.b.example.test")
	}, &strings.Builder{})
}

// TestMyNodeOneConfigMaps: the four ConfigMaps exactly as MyNodeOne's scripts
// wrote them (testdata/mynodeone, made by running them) sync without an
// error: MyNodeOne's meaning kept (routing.json decides; "vps_nodes": []
// serves nowhere; the laptop re-registered after an address change is one
// node; the control plane registered as a laptop is never pushed to; the
// laptop, registered by MyNodeOne but enrolled by nobody, gets nothing), only
// the nodes pushed are marked synced, and no MyNodeOne field changes. `mno
// state` shows every entry and every problem.
func TestMyNodeOneConfigMaps(t *testing.T) {
	e := newEnv(t, "vps-1", "laptop-1")
	v, l := e.host("vps-1"), e.host("laptop-1")
	raw, err := os.ReadFile("../testdata/mynodeone/configmaps.json")
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's nodes become the lab's: the VPS and the laptop's current
	// address; the laptop's old address and the control plane stay as they
	// are (unreachable: a push to them would fail the run).
	text := strings.NewReplacer(`100.86.188.1`, v.Addr, `100.86.112.113`, l.Addr).Replace(string(raw))
	var cms map[string]map[string]string
	if err := json.Unmarshal([]byte(text), &cms); err != nil {
		t.Fatal(err)
	}
	for name, data := range cms {
		e.setConfigMap(name, data)
	}
	// MyNodeOne pins no host keys: the control plane knows them (as adopt
	// would have confirmed them).
	known := v.Addr + " " + v.HostKey + "\n" + l.Addr + " " + l.HostKey + "\n"
	writeFile(t, filepath.Join(e.home, "known_hosts"), known)
	// The VPS runs mno's Traefik (add-vps or adopt set it up; neither is
	// what this test is about, and both would add mno's fields).
	if out, err := v.Command(context.Background(), true, "mkdir", "-p", "/etc/traefik/dynamic").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	r := e.run("sync")
	if r.exit != 0 || r.err != nil {
		t.Fatalf("sync of MyNodeOne's ConfigMaps: exit %d, %v", r.exit, r.err)
	}
	// The laptop is MyNodeOne's registration, not enrolled by mno (adopt
	// enrols laptops): it gets nothing, and the recap says so (issue 17).
	if !strings.Contains(r.stderr, "log: synced 1 of 1 node(s); 2 registry entries not synced: management_laptops[0] Vinay-ThinkPad superseded, management_laptops[1] canada-pc control-plane (see the problems); 1 laptop not matching its enrolment got nothing") ||
		!strings.Contains(r.stderr, "laptop Vinay-ThinkPad: not enrolled by this control plane") {
		t.Errorf("the report does not account for every entry:\n%s", r.stderr)
	}
	for _, target := range []string{"canada-pc", "100.76.150.207", "100.86.112.112"} {
		if _, ok := r.targets[target]; ok || strings.Contains(r.stderr, "["+target+"]") {
			t.Errorf("sync touched %s", target)
		}
	}
	evs := problems(t, r)
	if hasProblemEvent(evs, "invalid", "", "", "", "") || len(evs) == 0 {
		t.Errorf("problems: %s", jsonText(t, evs))
	}
	for _, p := range evs {
		if p["level"] != "warning" {
			t.Errorf("MyNodeOne's data gave an invalid entry: %v", p)
		}
	}
	// routing.json alone decides: immich on both listed domains; open-webui
	// ("vps_nodes": []) and grafana ("domains": []) nowhere; no public route
	// on the VPS's own domain (MyNodeOne recorded none).
	routes := readFile(t, v, routesPath)
	for _, want := range []string{"Host(`photos.curiios.com`)", "Host(`photos.vinaysachdeva.com`)", "http://100.122.68.206:80"} {
		if !strings.Contains(routes, want) {
			t.Errorf("routes lack %s:\n%s", want, routes)
		}
	}
	if strings.Contains(routes, "chat") || strings.Contains(routes, "grafana") || strings.Count(routes, "rule:") != 4 {
		t.Errorf("routes serve more than routing.json says:\n%s", routes)
	}
	if hostsFile := readFile(t, l, "/etc/hosts"); strings.Contains(hostsFile, "minicloud.local") {
		t.Errorf("the unenrolled laptop got a hosts block:\n%s", hostsFile)
	}
	if _, err := l.Stat("/home/mno/.kube/config"); err == nil {
		t.Error("the unenrolled laptop got a kubeconfig")
	}

	// Only the nodes pushed are marked; MyNodeOne's fields are unchanged.
	var before, after map[string]any
	json.Unmarshal([]byte(cms["sync-controller-registry"]["registry.json"]), &before)
	after = e.registry()
	status := map[string]bool{"status": true, "last_sync": true, "applied": true, "last_error": true}
	for _, list := range []string{"vps_nodes", "management_laptops", "worker_nodes"} {
		b, a := before[list].([]any), after[list].([]any)
		if len(a) != len(b) {
			t.Fatalf("%s: %d entries, had %d", list, len(a), len(b))
		}
		for i := range b {
			be, ae := b[i].(map[string]any), a[i].(map[string]any)
			pushed := be["ip"] == v.Addr
			for k, bv := range be {
				if status[k] && pushed {
					continue
				}
				if jsonText(t, ae[k]) != jsonText(t, bv) {
					t.Errorf("%s[%d].%s changed: %v → %v", list, i, k, bv, ae[k])
				}
			}
			if pushed && (ae["status"] != "active" || ae["last_error"] != nil || ae["last_sync"] == nil) {
				t.Errorf("%s[%d] pushed but not marked synced: %v", list, i, ae)
			}
		}
	}
	for _, cm := range []string{"service-registry", "domain-registry", "cluster-info"} {
		if jsonText(t, e.configMap(cm)) != jsonText(t, cms[cm]) {
			t.Errorf("sync changed %s:\n%v", cm, e.configMap(cm))
		}
	}

	// mno state shows every entry and every problem.
	out, code := mnoState(t, e, "state")
	for _, want := range []string{
		"vps-edge-01     vps     " + v.Addr, "Vinay-ThinkPad  laptop  100.86.112.112", "no: superseded", "canada-pc       laptop  100.76.150.207",
		"no: control-plane", "Vinay-ThinkPad  laptop  " + l.Addr,
		"photos.curiios.com        → http://100.122.68.206:80  immich (routing.json)",
		"open-webui                     chat       100.122.68.207:8080  no      curiios.com on none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("mno state lacks %q:\n%s", want, out)
		}
	}
	for _, p := range evs {
		if !strings.Contains(out, p["message"].(string)) {
			t.Errorf("mno state lacks the problem %q", p["message"])
		}
	}
	if code != 0 {
		t.Errorf("mno state: exit %d", code)
	}
	if out, code := mnoState(t, e, "state", "check"); code != 0 || !strings.Contains(out, "ok: 4 node(s), 6 service(s); 0 invalid") {
		t.Errorf("mno state check: exit %d\n%s", code, out)
	}

	// MyNodeOne's next write left domains.json blank: still no error, and
	// the blank document is left as it is.
	blank, _ := os.ReadFile("../testdata/mynodeone/blank-domains.json")
	var b map[string]map[string]string
	json.Unmarshal([]byte(strings.ReplaceAll(string(blank), "100.86.188.1", v.Addr)), &b)
	e.setConfigMap("domain-registry", b["domain-registry"])
	r = e.run("sync")
	if r.exit != 0 || !strings.Contains(r.stderr, "domain-registry domains.json: blank document: read as empty") {
		t.Errorf("sync with a blank domains.json: exit %d\n%s", r.exit, r.stderr)
	}
	if r.changed() != 0 {
		t.Errorf("the second sync changed %d things:\n%s", r.changed(), r.stderr)
	}
	if got := e.configMap("domain-registry")["domains.json"]; got != " " {
		t.Errorf("domains.json rewritten: %q", got)
	}

	// Registering the laptop again folds MyNodeOne's older entry of that
	// name into the current one, keeping its fields.
	e.mustRun("add-laptop", "name=Vinay-ThinkPad", "address="+l.Addr, "user=mno", "host_key="+l.HostKey)
	var named []map[string]any
	for _, x := range e.registry()["management_laptops"].([]any) {
		if m := x.(map[string]any); m["name"] == "Vinay-ThinkPad" {
			named = append(named, m)
		}
	}
	if len(named) != 1 || named[0]["ip"] != l.Addr || named[0]["repo_path"] != "/home/mno/Projects/mynodeone/code/MyNodeOne" || named[0]["host_key"] != l.HostKey {
		t.Errorf("Vinay-ThinkPad after add-laptop: %v", named)
	}
	// The control plane's own address is refused before anything connects.
	r = e.run("add-laptop", "name=cp-laptop", "address=100.76.150.207", "user=mno", "accept_new_host_key=true")
	if r.exit != 1 || !strings.Contains(r.stderr, "parameter address: 100.76.150.207 is the control plane's own address") || strings.Contains(r.stderr, "connect") {
		t.Errorf("add-laptop at the control plane's address: exit %d\n%s", r.exit, r.stderr)
	}
}

// mnoState runs the mno binary's state command against the env's cluster.
func mnoState(t *testing.T, e *env, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(mnoBinary(t), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig, "MNO_HOME="+e.home)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestStateCheck: `mno state check` exits 1 while an entry is invalid, and
// `mno state --output json` carries every problem.
func TestStateCheck(t *testing.T) {
	e := newEnv(t)
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{
		"blog": map[string]any{"subdomain": "blog", "ip": "10.1.0.5", "port": 80, "public": true},
		"evil": map[string]any{"subdomain": catchAll, "ip": "169.254.169.254", "port": 700000, "public": true},
	})
	out, code := mnoState(t, e, "state", "check")
	if code != 1 || !strings.Contains(out, `invalid  service-registry services.json "evil": subdomain:`) || !strings.Contains(out, "FAILED: 0 node(s), 1 service(s); 3 invalid") {
		t.Errorf("mno state check: exit %d\n%s", code, out)
	}
	out, code = mnoState(t, e, "state", "--output", "json")
	var doc struct {
		V        int
		Invalid  int
		Services []map[string]any
		Problems []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("mno state --output json: exit %d, %v\n%s", code, err, out)
	}
	if doc.V != 1 || doc.Invalid != 3 || len(doc.Services) != 1 || doc.Problems[0]["configmap"] != "service-registry" {
		t.Errorf("json: %+v", doc)
	}
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "10.1.0.5", "port": 80, "public": true}})
	if out, code := mnoState(t, e, "state", "check"); code != 0 {
		t.Errorf("clean state: exit %d\n%s", code, out)
	}
	if out, code := mnoState(t, e, "state", "check", "--strict"); code != 0 {
		t.Errorf("clean state, --strict: exit %d\n%s", code, out)
	}
}

// TestRemoveNodeKeepsRoutingMeaning: removing the only VPS a routing.json
// entry lists leaves it with "vps_nodes": [] — served nowhere, as before
// on the remaining VPSes — instead of spreading the service to every VPS.
func TestRemoveNodeKeepsRoutingMeaning(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2", "laptop-1")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{
		"blog": map[string]any{"subdomain": "blog", "ip": "10.1.0.5", "port": 80, "public": true},
		"chat": map[string]any{"subdomain": "chat", "ip": "10.1.0.6", "port": 80, "public": false},
	})
	addNodesWithKubeconfig(t, e)
	v1, v2 := e.host("vps-1"), e.host("vps-2")
	e.setConfigMap("domain-registry", map[string]string{
		"domains.json": e.configMap("domain-registry")["domains.json"],
		"routing.json": `{"chat": {"domains": ["chat.example.org"], "vps_nodes": ["` + v1.Addr + `"], "strategy": "round-robin"}}`,
	})
	e.mustRun("sync")
	if !strings.Contains(readFile(t, v1, routesPath), "chat.example.org") || strings.Contains(readFile(t, v2, routesPath), "chat") {
		t.Fatal("routing.json not applied before the removal")
	}
	before := readFile(t, v2, routesPath)
	e.mustRun("remove-node", "name=vps-1")
	var routing map[string]map[string]any
	if err := json.Unmarshal([]byte(e.configMap("domain-registry")["routing.json"]), &routing); err != nil {
		t.Fatal(err)
	}
	if vps, ok := routing["chat"]["vps_nodes"].([]any); !ok || len(vps) != 0 {
		t.Errorf("routing.json after the removal: %v (want the entry kept with no VPS)", routing)
	}
	e.mustRun("sync")
	if after := readFile(t, v2, routesPath); after != before {
		t.Errorf("vps-2 now serves what only vps-1 served:\n%s", after)
	}
}

// TestWatchProblemsMetric: `mno watch` exports the state's problems.
func TestWatchProblemsMetric(t *testing.T) {
	e := newEnv(t)
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{
		"p1": map[string]any{"subdomain": "p1", "ip": "10.1.0.5", "port": -1, "public": true},
		"p2": map[string]any{"subdomain": catchAll, "ip": "10.1.0.5", "port": 80, "public": true},
	})
	w := e.startWatcher(t, "sync")
	waitCond(t, "the problems metric", time.Minute, func() bool { return w.metric(`mno_state_problems{level="invalid"}`) == 2 })
	e.setServices(map[string]any{"p1": map[string]any{"subdomain": "p1", "ip": "10.1.0.5", "port": 80, "public": true}})
	waitCond(t, "the problems metric to drop", time.Minute, func() bool { return w.metric(`mno_state_problems{level="invalid"}`) == 0 })
}
