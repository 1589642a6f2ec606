package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/lab/hosts"
)

const joinToken = "K10deadbeefcafe::server:0123456789abcdef-secret-token"

// becomeReady plays the kubelet: once the installer has run on h, it creates
// the Node object and reports it Ready.
func (e *env) becomeReady(h *hosts.Host, name string) {
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if _, err := h.Stat("/usr/local/bin/k3s"); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // the playbook is waiting by now
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		n, err := e.client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
		if err != nil {
			return
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
		e.client.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{})
	}()
}

// TestAddWorker: the join token reaches only config.yaml (0600): never an
// argv, the journal or the JSONL; the installer runs once; the join waits for
// the Node to be Ready through the API; labels are applied; the worker is
// registered; a second run changes nothing.
func TestAddWorker(t *testing.T) {
	e := newEnv(t, "worker-1")
	w := e.host("worker-1")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"grafana": map[string]any{"subdomain": "grafana", "ip": "100.122.68.3", "port": 80}})
	tokenFile := filepath.Join(t.TempDir(), "node-token")
	os.WriteFile(tokenFile, []byte(joinToken+"\n"), 0o600)
	// The k3s installer stand-in: what curl would pipe to sh.
	w.SetShim("curl", hosts.ShimResponse{Stdout: "echo \"k3s installer $*\"; touch /usr/local/bin/k3s\n"})
	e.becomeReady(w, "worker-1")

	params := []string{"name=worker-1", "address=" + w.Addr, "user=mno", "host_key=" + w.HostKeyFingerprint,
		"token_file=" + tokenFile, "labels=zone=home,disk=ssd", "location=attic"}
	r := e.mustRun("add-worker", params...)

	cfg := readFile(t, w, "/etc/rancher/k3s/config.yaml")
	for _, want := range []string{"server: https://10.0.0.1:6443", "token: " + joinToken, "node-name: worker-1", "node-ip: " + w.Addr, "flannel-iface: tailscale0"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, cfg)
		}
	}
	if fi, _ := w.Stat("/etc/rancher/k3s/config.yaml"); fi.Mode().Perm() != 0o600 {
		t.Errorf("config.yaml mode %o, want 600", fi.Mode().Perm())
	}
	calls, _ := w.ShimCalls()
	var lines []string
	for _, c := range calls {
		line := strings.Join(c.Argv, " ")
		lines = append(lines, line)
		if strings.Contains(line, "secret-token") {
			t.Errorf("the join token is on a command line: %q", line)
		}
	}
	if !contains(lines, "curl -sfL https://get.k3s.io") {
		t.Errorf("no installer download; commands:\n%s", strings.Join(lines, "\n"))
	}
	for name, out := range map[string]string{"journal": r.stderr, "JSONL": r.stdout} {
		if strings.Contains(out, "secret-token") {
			t.Errorf("the join token appears in the %s", name)
		}
	}
	node, err := e.client.CoreV1().Nodes().Get(e.ctx, "worker-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"node-role.kubernetes.io/worker": "true", "mynodeone.io/location": "attic", "zone": "home", "disk": "ssd"} {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	ent := e.entry("worker_nodes", "worker-1")
	if ent["host_key"] != w.HostKey || ent["status"] != "active" {
		t.Errorf("worker entry: %v", ent)
	}
	if hostsFile := readFile(t, w, "/etc/hosts"); !strings.Contains(hostsFile, "100.122.68.3\tgrafana.home.local") {
		t.Errorf("/etc/hosts:\n%s", hostsFile)
	}

	// Again: nothing changes, the installer does not run again.
	files := []string{"/etc/rancher/k3s/config.yaml", "/etc/hosts"}
	before := mtimes(t, w, files...)
	w.ClearShimCalls()
	r = e.mustRun("add-worker", params...)
	if r.changed() != 0 {
		t.Errorf("second run changed %d:\n%s", r.changed(), r.stderr)
	}
	if after := mtimes(t, w, files...); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("second run touched files")
	}
	if calls := argvs(t, w); len(calls) != 0 {
		t.Errorf("second run issued commands: %v", calls)
	}
}

// TestAddLaptop: the laptop gets a kubeconfig pointing at the control plane's
// address in its user's looked-up home (here root's: /root), and one hosts
// block that also replaces MyNodeOne's legacy blocks.
func TestAddLaptop(t *testing.T) {
	e := newEnv(t, "laptop-1")
	l := e.host("laptop-1")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{
		"dashboard": map[string]any{"subdomain": "dashboard", "ip": "100.122.68.205"},
		"immich":    map[string]any{"subdomain": "photos", "ip": "100.122.68.206"},
	})
	legacy := "127.0.0.1\tlocalhost\n\n# MyNodeOne Services - Auto-synced on Sat Nov 22 20:19:01 EST 2025\n100.122.68.205\tdashboard.home.local\n\n" +
		"# MyNodeOne services\n100.1.1.1\told.home.local    # ns/svc\n# End MyNodeOne services\n192.168.1.10\tnas\n"
	l.WriteFile("/etc/hosts", []byte(legacy), 0o644)

	params := []string{"name=laptop-1", "address=" + l.Addr, "user=root", "accept_new_host_key=true"}
	r := e.mustRun("add-laptop", params...)
	if !strings.Contains(r.stderr, "recorded in "+filepath.Join(e.home, "known_hosts")) {
		t.Errorf("accept_new_host_key is not journalled:\n%s", r.stderr)
	}
	kc := readFile(t, l, "/root/.kube/config")
	if !strings.Contains(kc, `"server": "https://10.0.0.1:6443"`) || strings.Contains(kc, "127.0.0.1") {
		t.Errorf("kubeconfig:\n%s", kc)
	}
	if fi, _ := l.Stat("/root/.kube/config"); fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %o", fi.Mode().Perm())
	}
	if k := fetchKubeconfig(t, l, "/root"); true {
		secretFree(t, r, k)
	}
	want := "127.0.0.1\tlocalhost\n192.168.1.10\tnas\n\n# BEGIN mno (managed by mno sync; do not edit)\n" +
		"100.122.68.205\tdashboard.home.local\n100.122.68.205\thome.local\n100.122.68.206\tphotos.home.local\n# END mno\n"
	if got := readFile(t, l, "/etc/hosts"); got != want {
		t.Errorf("/etc/hosts:\n%s\nwant:\n%s", got, want)
	}
	ent := e.entry("management_laptops", "laptop-1")
	if ent["host_key"] != l.HostKey {
		t.Errorf("host key not pinned: %v", ent["host_key"])
	}
	// No backup files in /etc.
	out, _ := l.Command(context.Background(), false, "sh", "-c", "ls -A /etc | grep -i -e backup -e '^\\.mno' -e '\\.tmp$' || true").Output()
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("leftovers in /etc: %s", out)
	}

	before := mtimes(t, l, "/root/.kube/config", "/etc/hosts")
	r = e.mustRun("add-laptop", params...)
	if r.changed() != 0 {
		t.Errorf("second run changed %d:\n%s", r.changed(), r.stderr)
	}
	if after := mtimes(t, l, "/root/.kube/config", "/etc/hosts"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("second run touched files")
	}
}
