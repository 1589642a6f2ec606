package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mno-sh/mno/bootstrap"
)

// TestInitKeepsMyNodeOneData: init creates the missing ConfigMaps and leaves
// existing MyNodeOne data byte for byte (including its newlines-as-spaces
// JSON), and a second init changes nothing.
func TestInitKeepsMyNodeOneData(t *testing.T) {
	e := newEnv(t)
	legacyReg := `{   "management_laptops": [     {       "ip": "100.86.112.112",       "name": "vinay-laptop",       "ssh_user": "vinay",       "webhook_port": 8080,       "repo_path": "/home/vinay/MyNodeOne",       "registered": "2025-11-22T20:10:11-05:00",       "last_sync": "2025-11-23T01:12:40Z",       "status": "active"     }   ],   "vps_nodes": [],   "worker_nodes": [],   "metadata": {"version": "1.0"} } `
	e.setConfigMap("sync-controller-registry", map[string]string{"registry.json": legacyReg})
	e.setConfigMap("cluster-info", map[string]string{"cluster-name": "mynodeone", "cluster-domain": "minicloud", "repo-path": "/home/vinay/MyNodeOne"})

	e.mustRun("init", "cluster_name=other", "control_plane_ip=100.64.0.1")
	if got := e.configMap("sync-controller-registry")["registry.json"]; got != legacyReg {
		t.Errorf("init rewrote MyNodeOne's registry:\n%s", got)
	}
	info := e.configMap("cluster-info")
	if info["cluster-name"] != "mynodeone" || info["cluster-domain"] != "minicloud" || info["repo-path"] != "/home/vinay/MyNodeOne" {
		t.Errorf("init changed cluster-info: %v", info)
	}
	if info["control-plane-ip"] != "100.64.0.1" {
		t.Errorf("missing key not added: %v", info)
	}
	if e.configMap("service-registry") == nil || e.configMap("domain-registry")["routing.json"] == "" {
		t.Error("missing ConfigMaps not created")
	}
	if r := e.mustRun("init", "control_plane_ip=100.64.0.1"); r.changed() != 0 {
		t.Errorf("second init changed %d", r.changed())
	}
	// mno reads it: the laptop is a registered node.
	if e.entry("management_laptops", "vinay-laptop")["repo_path"] != "/home/vinay/MyNodeOne" {
		t.Error("MyNodeOne entry unreadable")
	}
}

// TestBootstrap: the printed one-liner, run as root on a fresh node, creates
// the user, authorises the control plane's key only from its address, grants
// passwordless sudo, and prints the host key; run again it changes nothing;
// then mno connects as that user with the pinned key and sudo works.
func TestBootstrap(t *testing.T) {
	e := newEnv(t, "node-1")
	h := e.host("node-1")
	script, err := bootstrap.Script("deploy", e.pub, e.lab.Gateway())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := h.Command(ctx, false, "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	keyLine := strings.Join(strings.Fields(h.HostKey)[:2], " ")
	if !strings.Contains(string(out), `host_key="`+keyLine+`"`) {
		t.Errorf("bootstrap output lacks the host key:\n%s", out)
	}
	ak := readFile(t, h, "/home/deploy/.ssh/authorized_keys")
	if ak != `from="`+e.lab.Gateway()+`" `+e.pub+"\n" {
		t.Errorf("authorized_keys:\n%s", ak)
	}
	files := []string{"/home/deploy/.ssh/authorized_keys", "/etc/sudoers.d/mno-deploy", "/etc/passwd"}
	before := mtimes(t, h, files...)
	time.Sleep(20 * time.Millisecond)
	if out, err := h.Command(ctx, false, "sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("second bootstrap: %v\n%s", err, out)
	}
	if after := mtimes(t, h, files...); len(after) != 3 || after["/etc/sudoers.d/mno-deploy"] != before["/etc/sudoers.d/mno-deploy"] ||
		after["/home/deploy/.ssh/authorized_keys"] != before["/home/deploy/.ssh/authorized_keys"] || after["/etc/passwd"] != before["/etc/passwd"] {
		t.Errorf("second run changed files: %v → %v", before, after)
	}

	probe := filepath.Join(t.TempDir(), "probe.star")
	writeFile(t, probe, `
def main(ctx, addr, key):
    h = ssh.connect(addr, user = "deploy", host_key = key, name = "node-1")
    r = h.run(["id", "-un"], sudo = True, read_only = True)
    print("sudo user: " + r.stdout.strip())
`)
	r := e.run(probe, "addr="+h.Addr, "key="+keyLine)
	if r.exit != 0 || !strings.Contains(r.stdout, "sudo user: root") {
		if log, err := os.ReadFile(filepath.Join(h.Dir, "sshd.log")); err == nil {
			t.Logf("sshd.log:\n%s", log)
		}
		t.Fatalf("connect after bootstrap: exit %d\n%s\n%s", r.exit, r.stdout, r.stderr)
	}
}
