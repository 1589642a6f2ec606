package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRemoveNode: removing a VPS deletes its routes file and every registry
// entry naming it; removing a laptop removes its hosts block; an unreachable
// node stays registered unless force=true.
func TestRemoveNode(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2", "laptop-1")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true}})
	addNodesWithKubeconfig(t, e)
	v1 := e.host("vps-1")
	e.setConfigMap("domain-registry", map[string]string{
		"domains.json": e.configMap("domain-registry")["domains.json"],
		"routing.json": `{"blog": {"domains": ["a.org"], "vps_nodes": ["` + v1.Addr + `", "100.9.9.9"], "strategy": "round-robin"}}`,
	})

	e.mustRun("remove-node", "name=vps-1")
	if _, err := v1.Stat("/etc/traefik/dynamic/mno-routes.yml"); err == nil {
		t.Error("the routes file is still on vps-1")
	}
	reg := e.configMap("sync-controller-registry")["registry.json"]
	dom := e.configMap("domain-registry")
	for what, text := range map[string]string{"registry": reg, "domains.json": dom["domains.json"], "routing.json": dom["routing.json"]} {
		if strings.Contains(text, v1.Addr) {
			t.Errorf("%s still names vps-1 (%s):\n%s", what, v1.Addr, text)
		}
	}
	if !strings.Contains(dom["routing.json"], "100.9.9.9") {
		t.Errorf("routing.json lost another VPS:\n%s", dom["routing.json"])
	}

	l := e.host("laptop-1")
	e.mustRun("remove-node", "name=laptop-1")
	if h := readFile(t, l, "/etc/hosts"); strings.Contains(h, "BEGIN mno") || strings.Contains(h, "home.local") {
		t.Errorf("hosts block left on the laptop:\n%s", h)
	}

	// Unreachable: stays registered without force, goes with it.
	e.lab.Partition("vps-2")
	defer e.lab.Heal("vps-2")
	r := e.run("remove-node", "name=vps-2", "timeout=2s")
	if r.exit == 0 || !strings.Contains(r.stderr, "stays registered") || !strings.Contains(r.stderr, "force=true") {
		t.Errorf("exit %d:\n%s", r.exit, r.stderr)
	}
	e.entry("vps_nodes", "vps-2")
	// With force it is unregistered; the unreachable node still makes the run exit 2.
	r = e.run("remove-node", "name=vps-2", "timeout=2s", "force=true")
	if r.exit != 2 || !strings.Contains(r.stderr, "removing it anyway") {
		t.Errorf("force=true: exit %d\n%s", r.exit, r.stderr)
	}
	if strings.Contains(e.configMap("sync-controller-registry")["registry.json"], "vps-2") {
		t.Error("vps-2 still registered after force=true")
	}
	// A second removal converges: nothing to do, exit 0, nothing changed.
	r = e.run("remove-node", "name=vps-2")
	if r.exit != 0 || r.changed() != 0 || !strings.Contains(r.stderr, "no node named vps-2 is registered: nothing to remove") {
		t.Errorf("removing an unknown node: exit %d\n%s", r.exit, r.stderr)
	}
}

// TestRemoveWorker: the worker is drained and its Node deleted through the API.
func TestRemoveWorker(t *testing.T) {
	e := newEnv(t, "worker-1")
	w := e.host("worker-1")
	e.initCluster("10.0.0.1")
	tok := t.TempDir() + "/node-token"
	writeFile(t, tok, joinToken)
	w.SetShim("curl", shimScript("touch /usr/local/bin/k3s"))
	e.becomeReady(w, "worker-1")
	e.mustRun("add-worker", "name=worker-1", "address="+w.Addr, "host_key="+w.HostKey, "token_file="+tok)
	e.mustRun("remove-node", "name=worker-1")
	if _, err := e.client.CoreV1().Nodes().Get(context.Background(), "worker-1", metav1.GetOptions{}); err == nil {
		t.Error("the Node still exists")
	}
	if strings.Contains(e.configMap("sync-controller-registry")["registry.json"], "worker-1") {
		t.Error("worker-1 still registered")
	}
}

// TestRemoveWorkerUnreachable (issue 13 item 5): an unreachable worker is
// not drained, its Node not deleted and it stays registered — reachability
// is checked before anything destructive — and the message says so truly;
// force=true then removes it: Node drained and deleted, unregistered.
func TestRemoveWorkerUnreachable(t *testing.T) {
	e := newEnv(t, "worker-1")
	w := e.host("worker-1")
	e.initCluster("10.0.0.1")
	tok := t.TempDir() + "/node-token"
	writeFile(t, tok, joinToken)
	w.SetShim("curl", shimScript("touch /usr/local/bin/k3s"))
	e.becomeReady(w, "worker-1")
	e.mustRun("add-worker", "name=worker-1", "address="+w.Addr, "host_key="+w.HostKey, "token_file="+tok)

	e.lab.Partition("worker-1")
	defer e.lab.Heal("worker-1")
	r := e.run("remove-node", "name=worker-1", "timeout=2s")
	if r.exit == 0 || !strings.Contains(r.stderr, "cannot reach worker-1, so nothing was changed and it stays registered") {
		t.Errorf("exit %d:\n%s", r.exit, r.stderr)
	}
	n, err := e.client.CoreV1().Nodes().Get(context.Background(), "worker-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Node was deleted although the worker was unreachable: %v", err)
	}
	if n.Spec.Unschedulable {
		t.Error("the Node was cordoned (drained) although the worker was unreachable")
	}
	e.entry("worker_nodes", "worker-1")

	r = e.run("remove-node", "name=worker-1", "timeout=2s", "force=true", "drain_timeout=20s")
	if r.exit != 2 || !strings.Contains(r.stderr, "unreachable, removing it anyway (force=true)") {
		t.Errorf("force=true: exit %d\n%s", r.exit, r.stderr)
	}
	if strings.Contains(r.stderr, "stays registered") {
		t.Errorf("force=true says the node stays registered:\n%s", r.stderr)
	}
	if _, err := e.client.CoreV1().Nodes().Get(context.Background(), "worker-1", metav1.GetOptions{}); err == nil {
		t.Error("the Node still exists after force=true")
	}
	if strings.Contains(e.configMap("sync-controller-registry")["registry.json"], "worker-1") {
		t.Error("worker-1 still registered after force=true")
	}
}
