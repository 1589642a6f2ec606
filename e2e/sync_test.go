package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/hosts"
)

// hostsRunning is what `docker ps` shows once Traefik runs.
var hostsRunning = hosts.ShimResponse{Stdout: "f00dcafe\n"}

// addNodesWithKubeconfig registers vps-1, vps-2 and laptop-1 with the add playbooks.
func addNodesWithKubeconfig(t *testing.T, e *env) {
	t.Helper()
	for _, v := range []string{"vps-1", "vps-2"} {
		h := e.host(v)
		h.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hostsRunning)
		e.mustRun("add-vps", "name="+v, "address="+h.Addr, "domain=example.test", "email=ops@example.test", "host_key="+h.HostKey)
	}
	l := e.host("laptop-1")
	e.mustRun("add-laptop", "name=laptop-1", "address="+l.Addr, "user=mno", "host_key="+l.HostKey)
}

// TestSyncPartitioned: with one VPS cut off, the others sync, that node is
// failed with a message, the run exits 2, and the registry is valid JSON with
// every entry. Healed, the next sync recovers it; a sync with nothing to do
// changes nothing.
func TestSyncPartitioned(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2", "laptop-1")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true}})
	addNodesWithKubeconfig(t, e)

	e.setServices(map[string]any{
		"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true},
		"wiki": map[string]any{"subdomain": "wiki", "ip": "100.1.1.6", "port": 80, "public": true},
	})
	if err := e.lab.Partition("vps-2"); err != nil {
		t.Fatal(err)
	}
	r := e.run("sync", "timeout=2s")
	if r.exit != 2 {
		t.Fatalf("sync with a node cut off: exit %d, want 2", r.exit)
	}
	if c := r.targets["vps-2"]; c.Unreachable == 0 {
		t.Errorf("vps-2 not counted unreachable: %+v", c)
	}
	if routes := readFile(t, e.host("vps-1"), "/etc/traefik/dynamic/mno-routes.yml"); !strings.Contains(routes, "wiki.example.test") {
		t.Errorf("vps-1 was not synced:\n%s", routes)
	}
	if h := readFile(t, e.host("laptop-1"), "/etc/hosts"); !strings.Contains(h, "wiki.home.local") {
		t.Errorf("laptop-1 was not synced:\n%s", h)
	}
	reg := e.registry() // fails the test if not valid JSON
	if n := len(reg["vps_nodes"].([]any)) + len(reg["management_laptops"].([]any)); n != 3 {
		t.Errorf("registry lost entries: %v", reg)
	}
	v2 := e.entry("vps_nodes", "vps-2")
	if v2["status"] != "failed" || !strings.Contains(v2["last_error"].(string), "vps-2") {
		t.Errorf("vps-2 entry: status %v, last_error %v", v2["status"], v2["last_error"])
	}
	if v1 := e.entry("vps_nodes", "vps-1"); v1["status"] != "active" || v1["last_error"] != nil {
		t.Errorf("vps-1 entry: %v", v1)
	}

	e.lab.Heal("vps-2")
	e.mustRun("sync")
	if v2 := e.entry("vps_nodes", "vps-2"); v2["status"] != "active" || v2["last_error"] != nil {
		t.Errorf("vps-2 did not recover: %v", v2)
	}
	before := e.configMap("sync-controller-registry")["registry.json"]
	r = e.mustRun("sync")
	if r.changed() != 0 {
		t.Errorf("a sync with nothing to do changed %d:\n%s", r.changed(), r.stderr)
	}
	if after := e.configMap("sync-controller-registry")["registry.json"]; after != before {
		t.Error("a sync with nothing to do rewrote the registry")
	}
}

// TestSyncKeepsConcurrentRegistration: a node registered while a sync is
// running is still registered after the sync writes its status updates
// (MyNodeOne wrote back a snapshot taken at the start and lost it).
func TestSyncKeepsConcurrentRegistration(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2", "laptop-1")
	e.initCluster("10.0.0.1")
	addNodesWithKubeconfig(t, e)
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "news", "ip": "100.1.1.5", "port": 80, "public": true}})
	e.lab.Partition("vps-2")
	defer e.lab.Heal("vps-2")

	var wg sync.WaitGroup
	var r result
	wg.Add(1)
	go func() { defer wg.Done(); r = e.run("sync", "timeout=4s") }()
	// Once vps-1 has its new routes the sync is waiting on vps-2: register a node now.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(string(mustRead(e, "vps-1", "/etc/traefik/dynamic/mno-routes.yml")), "news.example.test") {
		if time.Now().After(deadline) {
			t.Fatal("sync never reached vps-1")
		}
		time.Sleep(20 * time.Millisecond)
	}
	reg := e.registry()
	reg["worker_nodes"] = append(reg["worker_nodes"].([]any), map[string]any{"name": "late-worker", "ip": "100.99.0.7", "ssh_user": "root", "status": "pending_sync"})
	b, _ := json.MarshalIndent(reg, "", "  ")
	e.setConfigMap("sync-controller-registry", map[string]string{"registry.json": string(b)})
	wg.Wait()
	if r.exit != 2 {
		t.Errorf("exit %d, want 2", r.exit)
	}
	if late := e.entry("worker_nodes", "late-worker"); late["status"] != "pending_sync" {
		t.Errorf("the concurrent registration was changed: %v", late)
	}
	if v2 := e.entry("vps_nodes", "vps-2"); v2["status"] != "failed" {
		t.Errorf("vps-2 status %v", v2["status"])
	}
}

func mustRead(e *env, host, path string) []byte {
	b, _ := e.host(host).ReadFile(path)
	return b
}
