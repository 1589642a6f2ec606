package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// publishEnv: vps-1 and vps-2 (domain example.test) and laptop-1 added, and
// three private services whose backends run on the VPSes.
func publishEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, "vps-1", "vps-2", "laptop-1")
	e.initCluster("10.0.0.1")
	v1, v2 := e.host("vps-1"), e.host("vps-2")
	e.setServices(map[string]any{
		"blog": map[string]any{"subdomain": "blog", "ip": v1.Addr, "port": 18080, "public": false, "namespace": "web", "service": "blog"},
		"home": map[string]any{"subdomain": "home", "ip": v1.Addr, "port": 18081, "public": false},
		"shop": map[string]any{"subdomain": "shop", "ip": v2.Addr, "port": 18082, "public": false},
	})
	addNodesWithKubeconfig(t, e)
	return e
}

// snapshot is the data of the four ConfigMaps, as text.
func (e *env) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	for _, cm := range []string{"sync-controller-registry", "service-registry", "domain-registry", "cluster-info"} {
		b.WriteString(jsonText(e.t, e.configMap(cm)))
	}
	return b.String()
}

func (e *env) jsonKey(cm, key string) map[string]any {
	e.t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(e.configMap(cm)[key]), &doc); err != nil {
		e.t.Fatalf("%s %s: %v", cm, key, err)
	}
	return doc
}

// mustRunUnchanged runs a playbook a second time and fails unless it
// changed nothing.
func (e *env) mustRunUnchanged(playbook string, params ...string) {
	e.t.Helper()
	before := e.snapshot()
	if r := e.mustRun(playbook, params...); r.changed() != 0 {
		e.t.Errorf("second run of %s %v changed %d things:\n%s", playbook, params, r.changed(), r.stderr)
	}
	if after := e.snapshot(); after != before {
		e.t.Errorf("second run of %s %v rewrote a ConfigMap", playbook, params)
	}
}

// TestPublishThroughTraefik: publish serves a service through the VPSes'
// real Traefik — under a subdomain, at the domain itself ("@"), on a second
// domain only on a second VPS; --dry-run shows the routes diff and writes
// nothing; unpublish makes it 404 (its .local name stays on the laptop, no
// public name ever enters /etc/hosts); domain remove refuses while a service
// is served only through it, then with force=true its routes are gone. A
// second run of each playbook changes nothing. mno state shows host → backend.
func TestPublishThroughTraefik(t *testing.T) {
	e := publishEnv(t)
	v1, v2, l := e.host("vps-1"), e.host("vps-2"), e.host("laptop-1")
	get1 := servedBy(t, v1, "18080", "18081")
	get2 := servedBy(t, v2, "18082")
	serves := func(get func(string) (int, string), host, backend string) func() bool {
		return func() bool {
			code, body := get(host)
			return code == 200 && strings.Contains(body, backend+" saw host "+host)
		}
	}
	gone := func(get func(string) (int, string), host string) func() bool {
		return func() bool { code, _ := get(host); return code == 404 }
	}
	// Traefik up on both, blog not served before publish.
	waitFor(t, "vps-1's Traefik: 404 for blog.example.test", gone(get1, "blog.example.test"), &strings.Builder{})
	waitFor(t, "vps-2's Traefik: 404 for shop.second.test", gone(get2, "shop.second.test"), &strings.Builder{})

	// A subdomain, on every VPS under its own domain.
	r := e.mustRun("publish", "service=blog")
	if !strings.Contains(r.stderr, "blog is published: blog.example.test on vps-1, blog.example.test on vps-2") {
		t.Errorf("publish report:\n%s", r.stderr)
	}
	if e.jsonKey("service-registry", "services.json")["blog"].(map[string]any)["public"] != true {
		t.Error("blog not public in service-registry")
	}
	waitFor(t, "blog.example.test through vps-1", serves(get1, "blog.example.test", v1.Addr+":18080"), &strings.Builder{})
	if !strings.Contains(readFile(t, v2, routesPath), "Host(`blog.example.test`)") {
		t.Error("vps-2 was not pushed blog's route")
	}
	e.mustRunUnchanged("publish", "service=blog")

	// --dry-run: the routes diff, nothing written.
	before, routes := e.snapshot(), readFile(t, v1, routesPath)
	r = e.runOpts(true, "publish", "service=home", "subdomain=@")
	if r.exit != 0 || !strings.Contains(r.stderr, "Host(`example.test`)") || !strings.Contains(r.stderr, `"subdomain": "@"`) {
		t.Errorf("dry-run publish: exit %d, no routes diff:\n%s", r.exit, r.stderr)
	}
	if e.snapshot() != before || readFile(t, v1, routesPath) != routes {
		t.Error("dry-run publish wrote something")
	}
	// "@": the domain itself.
	e.mustRun("publish", "service=home", "subdomain=@")
	waitFor(t, "example.test through vps-1", serves(get1, "example.test", v1.Addr+":18081"), &strings.Builder{})
	e.mustRunUnchanged("publish", "service=home", "subdomain=@")

	// A second domain, on the second VPS only.
	e.mustRun("domain", "add", "name=second.test", "vps=vps-2")
	e.mustRunUnchanged("domain", "add", "name=second.test", "vps=vps-2")
	e.mustRun("publish", "service=shop", "domains=second.test")
	waitFor(t, "shop.second.test through vps-2", serves(get2, "shop.second.test", v2.Addr+":18082"), &strings.Builder{})
	if code, _ := get1("shop.second.test"); code != 404 {
		t.Errorf("vps-1 serves shop.second.test (%d): only vps-2 serves second.test", code)
	}
	rt := e.jsonKey("domain-registry", "routing.json")["shop"].(map[string]any)
	if jsonText(t, rt["domains"]) != jsonText(t, []any{"second.test"}) || jsonText(t, rt["vps_nodes"]) != jsonText(t, []any{v2.Addr}) {
		t.Errorf("routing.json shop: %v", rt)
	}
	e.mustRunUnchanged("publish", "service=shop", "domains=second.test")
	out, _ := mnoState(t, e, "state")
	for _, want := range []string{"shop.second.test", "http://" + v2.Addr + ":18082", "blog.example.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("mno state lacks %q:\n%s", want, out)
		}
	}

	// unpublish: 404 on every VPS.
	e.mustRun("unpublish", "service=blog")
	waitFor(t, "blog.example.test gone from vps-1", gone(get1, "blog.example.test"), &strings.Builder{})
	if strings.Contains(readFile(t, v2, routesPath), "blog") {
		t.Error("vps-2 still routes blog")
	}
	e.mustRun("sync", "only=laptop-1")
	hosts := readFile(t, l, "/etc/hosts")
	if strings.Contains(hosts, "blog.example.test") || strings.Contains(hosts, "example.test\n") {
		t.Errorf("a public name is in the laptop's /etc/hosts:\n%s", hosts)
	}
	if !strings.Contains(hosts, v1.Addr+"\tblog.home.local") {
		t.Errorf("blog's private name left the laptop's /etc/hosts:\n%s", hosts)
	}
	e.mustRunUnchanged("unpublish", "service=blog")

	// domain remove: refused while shop is served only through it.
	before = e.snapshot()
	r = e.run("domain", "remove", "name=second.test")
	if r.exit != 1 || !strings.Contains(r.stderr, "second.test is the only domain serving shop (shop.second.test)") || e.snapshot() != before {
		t.Errorf("domain remove of shop's only domain: exit %d, wrote %v\n%s", r.exit, e.snapshot() != before, r.stderr)
	}
	e.mustRun("domain", "remove", "name=second.test", "force=true")
	waitFor(t, "shop.second.test gone from vps-2", gone(get2, "shop.second.test"), &strings.Builder{})
	if _, ok := e.jsonKey("domain-registry", "domains.json")["domains"].(map[string]any)["second.test"]; ok {
		t.Error("second.test still in domains.json")
	}
	if d := e.jsonKey("domain-registry", "routing.json")["shop"].(map[string]any)["domains"]; jsonText(t, d) != "[]" {
		t.Errorf("routing.json shop domains: %v", d)
	}
	e.mustRunUnchanged("domain", "remove", "name=second.test", "force=true")
	// The others are still served.
	if ok := serves(get1, "example.test", v1.Addr+":18081")(); !ok {
		t.Error("example.test is no longer served")
	}
}

// TestPublishRefusals: every refusal exits 1, says what to do, and writes
// nothing — no ConfigMap, no routes file.
func TestPublishRefusals(t *testing.T) {
	e := publishEnv(t)
	e.mustRun("publish", "service=blog")
	long := strings.Repeat("a", 300)
	cases := []struct {
		playbook string
		params   []string
		want     string
	}{
		{"publish", []string{"service=ghost"}, "service ghost is not in service-registry"},
		{"publish", []string{"service="}, "parameter service: \"\" is not a service name"},
		{"publish", []string{"service=" + long}, "is not a service name"},
		{"publish", []string{"service=blog;rm -rf /"}, "is not a service name"},
		{"publish", []string{"service:=1"}, "parameter service: 1 is a int, want a string"},
		{"publish", []string{"service=home", "subdomain=blog"}, "blog.example.test on vps-1 is also published by"},
		{"publish", []string{"service=home", "subdomain=a`) || PathPrefix(`/"}, "parameter subdomain:"},
		{"publish", []string{"service=home", "subdomain=x\n# END mno"}, "parameter subdomain:"},
		{"publish", []string{"service=home", "subdomain=фото"}, "parameter subdomain:"},
		{"publish", []string{"service=home", "subdomain=" + long}, "parameter subdomain:"},
		{"publish", []string{"service=home", "domains=nobody.test"}, "no VPS serves nobody.test: add it first, e.g. mno run domain add name=nobody.test"},
		{"publish", []string{"service=home", "domains=evil.test`) || Host(`x"}, "parameter domains:"},
		{"publish", []string{"service=home", "domains=localhost"}, "parameter domains:"},
		{"publish", []string{"service=home", `domains:=[""]`}, "parameter domains:"},
		{"publish", []string{"service=home", "vps=vps-9"}, "no VPS named vps-9 is registered"},
		{"publish", []string{"service=home", "vps=laptop-1"}, "no VPS named laptop-1 is registered"},
		{"publish", []string{"service=home", "vps=vps-1;id"}, "parameter vps:"},
		{"unpublish", []string{"service=ghost"}, "service ghost is not in service-registry"},
		{"unpublish", []string{"service=../x"}, "is not a service name"},
		{"domain", []string{"add", "name=new.test"}, "parameter vps: name the VPSes that serve new.test"},
		{"domain", []string{"add", "name=new.test", "vps=vps-9"}, "no VPS named vps-9"},
		{"domain", []string{"add", "name=10.0.0.1", "vps=vps-1"}, "parameter name:"},
		{"domain", []string{"add", "name=ex\u00e4mple.test", "vps=vps-1"}, "parameter name:"},
		{"domain", []string{"remove", "name=example.test"}, "example.test is the own domain of vps-1, vps-2"},
		{"domain", []string{"rename", "name=a.test"}, "parameter action: \"rename\": want add or remove"},
	}
	for _, c := range cases {
		t.Run(c.playbook+" "+strings.Join(c.params, " "), func(t *testing.T) {
			before := e.snapshot()
			routes := readFile(t, e.host("vps-1"), routesPath)
			r := e.run(c.playbook, c.params...)
			if r.exit != 1 {
				t.Errorf("exit %d, want 1", r.exit)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("the message lacks %q:\n%s", c.want, r.stderr)
			}
			if e.snapshot() != before {
				t.Error("a ConfigMap was written")
			}
			if readFile(t, e.host("vps-1"), routesPath) != routes {
				t.Error("the routes file was written")
			}
		})
	}
	// A routing entry cannot serve example.test on vps-2 only and
	// second.test on vps-1 only: refused, saying how.
	e.mustRun("domain", "add", "name=second.test", "vps=vps-1")
	before := e.snapshot()
	r := e.run("publish", "service=home", "domains=example.test,second.test")
	if r.exit != 1 || !strings.Contains(r.stderr, "second.test is not served by vps-2 (only by vps-1)") || e.snapshot() != before {
		t.Errorf("publish on domains of different VPSes: exit %d\n%s", r.exit, r.stderr)
	}
	// With the VPS named, it is expressible.
	e.mustRun("publish", "service=home", "domains=example.test,second.test", "vps=vps-1")
	if !strings.Contains(readFile(t, e.host("vps-1"), routesPath), "Host(`home.second.test`)") || strings.Contains(readFile(t, e.host("vps-2"), routesPath), "home") {
		t.Error("home's routing entry not pushed as given")
	}
}

// TestPublishConcurrent: two publishes at once are both kept.
func TestPublishConcurrent(t *testing.T) {
	e := publishEnv(t)
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i, svc := range []string{"blog", "home"} {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = e.run("publish", "service="+svc) }()
	}
	wg.Wait()
	for i, r := range res {
		if r.exit != 0 {
			t.Fatalf("publish %d: exit %d\n%s", i, r.exit, r.stderr)
		}
	}
	svcs := e.jsonKey("service-registry", "services.json")
	for _, s := range []string{"blog", "home"} {
		if svcs[s].(map[string]any)["public"] != true {
			t.Errorf("%s lost: %v", s, svcs[s])
		}
	}
	routes := readFile(t, e.host("vps-1"), routesPath)
	if !strings.Contains(routes, "Host(`blog.example.test`)") || !strings.Contains(routes, "Host(`home.example.test`)") {
		t.Errorf("vps-1's routes lack one of the two:\n%s", routes)
	}

	// Two publishes at once asking for one host name: exactly one gets it,
	// the other is refused (checked again under the lease) and writes nothing.
	for i, svc := range []string{"home", "shop"} {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = e.run("publish", "service="+svc, "subdomain=dup") }()
	}
	wg.Wait()
	if res[0].exit+res[1].exit != 1 || res[0].exit == 2 || res[1].exit == 2 {
		t.Fatalf("exits %d and %d, want one 0 and one 1", res[0].exit, res[1].exit)
	}
	loser, winner := "shop", "home"
	if res[0].exit == 1 {
		loser, winner = "home", "shop"
	}
	// The model names the one it would route (the first by name) and the
	// one it would not, whichever publish asked.
	if r := res[map[string]int{"home": 0, "shop": 1}[loser]]; !strings.Contains(r.stderr, "publishing "+loser+" would give the cluster state new problems") ||
		!strings.Contains(r.stderr, "dup.example.test on vps-1 is also published by") {
		t.Errorf("the refused publish does not say why:\n%s", r.stderr)
	}
	svcs = e.jsonKey("service-registry", "services.json")
	if svcs[winner].(map[string]any)["subdomain"] != "dup" || svcs[loser].(map[string]any)["subdomain"] == "dup" {
		t.Errorf("services after the race: %v", svcs)
	}
}

// TestDiscover: discover records the real API server's LoadBalancer and
// annotated Services, keeps public and unknown fields, leaves hand-made
// entries alone, removes entries whose Service is gone (saying so), skips a
// hostile annotation, and changes nothing the second time.
func TestDiscover(t *testing.T) {
	e := newEnv(t)
	e.initCluster("10.0.0.1")
	ctx := e.ctx
	create := e.serviceMaker("web", "apps")
	create("web", "immich-server", corev1.ServiceTypeLoadBalancer, 2283, "10.213.77.6", nil)
	create("web", "blog", corev1.ServiceTypeLoadBalancer, 80, "10.213.77.5", map[string]string{"home.local/subdomain": "journal"})
	create("apps", "notes", corev1.ServiceTypeClusterIP, 8080, "", map[string]string{"mynodeone.io/subdomain": "notes"})
	create("apps", "internal", corev1.ServiceTypeClusterIP, 80, "", nil)
	create("apps", "evil", corev1.ServiceTypeLoadBalancer, 80, "10.213.77.9", map[string]string{"home.local/subdomain": "a`) || PathPrefix(`/"})
	e.setServices(map[string]any{
		"blog":   map[string]any{"subdomain": "blog", "ip": "10.213.77.1", "port": 8080, "public": true, "namespace": "web", "service": "blog", "owner": "ops"},
		"old":    map[string]any{"subdomain": "old", "ip": "10.213.77.2", "port": 80, "public": true, "namespace": "web", "service": "old"},
		"manual": map[string]any{"subdomain": "manual", "ip": "10.213.77.3", "port": 80, "public": true},
	})

	r := e.mustRun("discover")
	svcs := e.jsonKey("service-registry", "services.json")
	blog := svcs["blog"].(map[string]any)
	if blog["ip"] != "10.213.77.5" || blog["port"] != float64(80) || blog["public"] != true || blog["owner"] != "ops" || blog["subdomain"] != "journal" {
		t.Errorf("blog: %v", blog)
	}
	im, ok := svcs["immich-server"].(map[string]any)
	if !ok || im["subdomain"] != "immich" || im["public"] != false || im["namespace"] != "web" || im["port"] != float64(2283) {
		t.Errorf("immich-server: %v", svcs["immich-server"])
	}
	if n, ok := svcs["notes"].(map[string]any); !ok || n["subdomain"] != "notes" || n["ip"] == "" {
		t.Errorf("notes (annotated ClusterIP): %v", svcs["notes"])
	}
	for _, k := range []string{"old", "internal", "evil"} {
		if _, ok := svcs[k]; ok {
			t.Errorf("%s recorded: %v", k, svcs[k])
		}
	}
	if _, ok := svcs["manual"]; !ok {
		t.Error("the hand-made entry was removed")
	}
	for _, want := range []string{"removed old: its Service web/old is gone", "discover: skipped apps/evil:", "recorded immich-server: web/immich-server at 10.213.77.6:2283, subdomain immich"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the report lacks %q:\n%s", want, r.stderr)
		}
	}
	e.mustRunUnchanged("discover")

	// A Service deleted: its entry goes.
	if err := e.client.CoreV1().Services("web").Delete(ctx, "immich-server", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun("discover")
	if _, ok := e.jsonKey("service-registry", "services.json")["immich-server"]; ok || !strings.Contains(r.stderr, "removed immich-server") {
		t.Errorf("immich-server not removed:\n%s", r.stderr)
	}
}

// serviceMaker creates the namespaces (their Services are deleted when the
// test ends) and returns a function creating a Service, with ip as its
// load-balancer address as MetalLB or servicelb would set it.
func (e *env) serviceMaker(namespaces ...string) func(ns, name string, typ corev1.ServiceType, port int32, ip string, ann map[string]string) {
	t, ctx := e.t, e.ctx
	for _, ns := range namespaces {
		_, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			svcs, _ := e.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			for _, s := range svcs.Items {
				e.client.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})
			}
		})
	}
	return func(ns, name string, typ corev1.ServiceType, port int32, ip string, ann map[string]string) {
		t.Helper()
		s, err := e.client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
			Spec:       corev1.ServiceSpec{Type: typ, Ports: []corev1.ServicePort{{Name: "http", Port: port}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ip != "" {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
			if _, err := e.client.CoreV1().Services(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestWatchDiscover: `mno watch discover --on-services` records a
// LoadBalancer Service once it has an address and removes its entry once
// it is deleted, without anyone running discover.
func TestWatchDiscover(t *testing.T) {
	e := newEnv(t)
	e.initCluster("10.0.0.1")
	create := e.serviceMaker("watched")
	w := e.startWatcher(t, "--on-services", "discover")
	waitCond(t, "the start run", time.Minute, func() bool { return w.metric("mno_watch_runs_total") >= 1 })
	entry := func() map[string]any {
		m, _ := e.jsonKey("service-registry", "services.json")["wiki"].(map[string]any)
		return m
	}
	create("watched", "wiki", corev1.ServiceTypeLoadBalancer, 80, "10.213.78.4", nil)
	waitCond(t, "wiki recorded", time.Minute, func() bool { m := entry(); return m != nil && m["ip"] == "10.213.78.4" })
	if m := entry(); m["namespace"] != "watched" || m["public"] != false {
		t.Errorf("wiki: %v", m)
	}
	if err := e.client.CoreV1().Services("watched").Delete(e.ctx, "wiki", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "wiki removed", time.Minute, func() bool { return entry() == nil })
	if log := w.logText(); !strings.Contains(log, "service watched/wiki") {
		t.Errorf("the watcher does not say a Service triggered it:\n%s", log)
	}
}

// TestPublishMyNodeOneData: on the ConfigMaps exactly as MyNodeOne's scripts
// wrote them (quirky JSON included), publish writes open-webui's routing
// entry for a domain MyNodeOne registered, leaving every other entry and
// the documents it does not change byte for byte; domain add keeps
// MyNodeOne's "Backup\share" description as the text it stood for; a
// second run of each changes nothing.
func TestPublishMyNodeOneData(t *testing.T) {
	e := newEnv(t)
	raw, err := os.ReadFile("../testdata/mynodeone/configmaps.json")
	if err != nil {
		t.Fatal(err)
	}
	var cms map[string]map[string]string
	if err := json.Unmarshal(raw, &cms); err != nil {
		t.Fatal(err)
	}
	for name, data := range cms {
		e.setConfigMap(name, data)
	}
	e.mustRun("publish", "service=open-webui", "domains=curiios.com", "sync=false")
	rt := e.jsonKey("domain-registry", "routing.json")
	if got := jsonText(t, rt["open-webui"].(map[string]any)["vps_nodes"]); got != jsonText(t, []any{"100.86.188.1"}) {
		t.Errorf("open-webui vps_nodes: %s", got)
	}
	if jsonText(t, rt["immich"]) == "" || rt["immich"].(map[string]any)["strategy"] != "round-robin" {
		t.Errorf("immich's entry changed: %v", rt["immich"])
	}
	for _, k := range []string{"services.json"} {
		if e.configMap("service-registry")[k] != cms["service-registry"][k] {
			t.Errorf("service-registry %s rewritten", k)
		}
	}
	if e.configMap("domain-registry")["domains.json"] != cms["domain-registry"]["domains.json"] {
		t.Error("domains.json rewritten")
	}
	e.mustRunUnchanged("publish", "service=open-webui", "domains=curiios.com", "sync=false")

	e.mustRun("domain", "add", "name=example.org", "vps=vps-edge-01", "sync=false")
	doms := e.jsonKey("domain-registry", "domains.json")["domains"].(map[string]any)
	if d := doms["vinaysachdeva.com"].(map[string]any)["description"]; d != `Backup\share` {
		t.Errorf("MyNodeOne's description: %q", d)
	}
	if got := jsonText(t, doms["example.org"].(map[string]any)["vps_nodes"]); got != jsonText(t, []any{"100.86.188.1"}) {
		t.Errorf("example.org: %s", got)
	}
	e.mustRunUnchanged("domain", "add", "name=example.org", "vps=vps-edge-01", "sync=false")
}
