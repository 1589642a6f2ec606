package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mno-sh/mno/bootstrap"
	"github.com/mno-sh/mno/builtins/ssh"
)

// TestHostileK3sVersion (issue 13 item 3): a k3s_version that would run a
// command in the worker's root shell is refused before anything changes on
// the worker: no agent configuration, no installer run.
func TestHostileK3sVersion(t *testing.T) {
	e := newEnv(t, "worker-1")
	w := e.host("worker-1")
	e.initCluster("10.0.0.1")
	tok := filepath.Join(t.TempDir(), "node-token")
	writeFile(t, tok, joinToken)
	r := e.run("add-worker", "name=worker-1", "address="+w.Addr, "user=mno", "host_key="+w.HostKey, "token_file="+tok,
		`k3s_version=v1.28.5+k3s1 sh -c "id > /pwned" #`)
	if r.exit != 1 || !strings.Contains(r.stderr, "parameter k3s_version") || !strings.Contains(r.stderr, "is not a k3s version") {
		t.Errorf("exit %d:\n%s", r.exit, r.stderr)
	}
	if _, err := w.Stat("/etc/rancher/k3s/config.yaml"); err == nil {
		t.Error("config.yaml written despite the bad version")
	}
	if _, err := w.Stat("/pwned"); err == nil {
		t.Error("the version's command ran on the worker")
	}
	if calls := argvs(t, w); len(calls) != 0 {
		t.Errorf("commands ran on the worker: %v", calls)
	}
}

// TestHostileControlPlaneIP (issue 13 item 3): cluster-info's
// control-plane-ip is ConfigMap data; one with a newline (which string
// replacement turned into insecure-skip-tls-verify: true) never reaches a
// laptop's kubeconfig — add-laptop refuses, sync leaves the kubeconfig alone
// and says so — and a server= parameter is checked the same way.
func TestHostileControlPlaneIP(t *testing.T) {
	e := newEnv(t, "laptop-1")
	l := e.host("laptop-1")
	e.initCluster("10.0.0.1")
	params := []string{"name=laptop-1", "address=" + l.Addr, "user=mno", "host_key=" + l.HostKey}
	e.mustRun("add-laptop", params...)
	kc := readFile(t, l, "/home/mno/.kube/config")
	if !strings.Contains(kc, `"server": "https://10.0.0.1:6443"`) || !strings.Contains(kc, `"certificate-authority-data": "`) {
		t.Fatalf("kubeconfig:\n%s", kc)
	}

	info := e.configMap("cluster-info")
	info["control-plane-ip"] = "10.0.0.1:6443\n    insecure-skip-tls-verify: true\n#"
	e.setConfigMap("cluster-info", info)
	r := e.run("add-laptop", params...)
	if r.exit != 1 || !strings.Contains(r.stderr, "cluster-info has no valid control-plane-ip") {
		t.Errorf("add-laptop with a hostile control-plane-ip: exit %d\n%s", r.exit, r.stderr)
	}
	r = e.run("sync")
	// The cluster state reports it (issue 12): skipped, named, never used.
	if !strings.Contains(r.stderr, "problem (invalid): cluster-info control-plane-ip: ") || !strings.Contains(r.stderr, "is not an IP address: not used") {
		t.Errorf("sync does not say the control-plane-ip is ignored:\n%s", r.stderr)
	}
	if got := readFile(t, l, "/home/mno/.kube/config"); got != kc || strings.Contains(got, "insecure") {
		t.Errorf("the kubeconfig changed:\n%s", got)
	}
	r = e.run("add-laptop", append(params, "server=https://10.0.0.2:6443\n    insecure-skip-tls-verify: true")...)
	if r.exit != 1 || !strings.Contains(r.stderr, "parameter server:") {
		t.Errorf("add-laptop server=<hostile>: exit %d\n%s", r.exit, r.stderr)
	}
	if got := readFile(t, l, "/home/mno/.kube/config"); got != kc {
		t.Errorf("the kubeconfig changed:\n%s", got)
	}
}

// TestLaptopSudoRule (issue 13 item 6): `mno bootstrap --sudo laptop` gives a
// laptop's user (a person, not root) only the /etc/hosts helper as root —
// no other sudo — and add-laptop and sync work through it, on a real sshd
// with a real sudo; the helper refuses what the rule does not cover.
func TestLaptopSudoRule(t *testing.T) {
	e := newEnv(t, "laptop-1")
	l := e.host("laptop-1")
	script, err := bootstrap.ScriptFor(bootstrap.Options{User: "alice", Key: e.pub, From: e.lab.Gateway(), Sudo: bootstrap.SudoLaptop})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := l.Command(ctx, false, "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "mno: alice is ready (sudo: the laptop rule: only "+ssh.HostsHelperPath) {
		t.Errorf("the bootstrap does not say which rule is in force:\n%s", out)
	}
	if got := readFile(t, l, "/etc/sudoers.d/mno-alice"); got != "alice ALL=(root) NOPASSWD: "+ssh.HostsHelperPath+" \"\"\n" {
		t.Errorf("sudoers: %q", got)
	}
	asAlice := func(cmd string, stdin string) (string, error) {
		c := l.Command(ctx, false, "runuser", "-u", "alice", "--", "sh", "-c", cmd)
		c.Stdin = strings.NewReader(stdin)
		b, err := c.CombinedOutput()
		return string(b), err
	}
	if out, err := asAlice("sudo -n true", ""); err == nil {
		t.Errorf("alice may run anything as root:\n%s", out)
	}
	if out, err := asAlice("sudo -n "+ssh.HostsHelperPath+" /etc/shadow", ""); err == nil {
		t.Errorf("the helper accepts arguments:\n%s", out)
	}
	// The helper itself keeps /etc/hosts's owner and mode: no setuid file.
	if out, err := asAlice("sudo -n "+ssh.HostsHelperPath, "0 -1 mno-probe-end-abc x\n"); err == nil || !strings.Contains(out, "from another version of mno") {
		t.Errorf("the helper ran with a wrong protocol: %v\n%s", err, out)
	}
	proto := regexp.MustCompile(`"\$proto" = ([0-9a-f]+)`).FindStringSubmatch(ssh.HostsHelper())[1]
	if out, err := asAlice("sudo -n "+ssh.HostsHelperPath, "0 -1 mno-probe-end-abc "+proto+"\nwrite\n04755\n0\n0\n6\nabc123\n\nhello\n"); err == nil ||
		!strings.Contains(out, "the laptop sudo rule keeps /etc/hosts's owner, group and mode") {
		t.Errorf("the helper made /etc/hosts setuid: %v\n%s", err, out)
	}
	if fi, err := l.Stat("/etc/hosts"); err != nil || fi.Mode().Perm() != 0o644 || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("/etc/hosts mode: %v %v", fi.Mode(), err)
	}
	hostsBefore := readFile(t, l, "/etc/hosts")

	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"dashboard": map[string]any{"subdomain": "dashboard", "ip": "100.122.68.205"}})
	r := e.mustRun("add-laptop", "name=alice-laptop", "address="+l.Addr, "user=alice", "host_key="+l.HostKey)
	if !strings.Contains(r.stderr, "edit /etc/hosts (sudo) (via "+ssh.HostsHelperPath+": the laptop sudo rule)") {
		t.Errorf("add-laptop does not say the laptop rule was used:\n%s", r.stderr)
	}
	hosts := readFile(t, l, "/etc/hosts")
	if !strings.Contains(hosts, "100.122.68.205\tdashboard.home.local") || !strings.Contains(hosts, strings.TrimSpace(strings.SplitN(hostsBefore, "\n", 2)[0])) {
		t.Errorf("/etc/hosts:\n%s", hosts)
	}
	if fi, err := l.Stat("/etc/hosts"); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("/etc/hosts mode changed: %v %v", fi.Mode(), err)
	}
	if kc := readFile(t, l, "/home/alice/.kube/config"); !strings.Contains(kc, "https://10.0.0.1:6443") {
		t.Errorf("kubeconfig:\n%s", kc)
	}
	// sync through the same rule: a new service reaches the laptop.
	e.setServices(map[string]any{
		"dashboard": map[string]any{"subdomain": "dashboard", "ip": "100.122.68.205"},
		"wiki":      map[string]any{"subdomain": "wiki", "ip": "100.122.68.207"},
	})
	r = e.run("sync")
	if r.exit != 0 || !strings.Contains(readFile(t, l, "/etc/hosts"), "100.122.68.207\twiki.home.local") {
		t.Errorf("sync through the laptop rule: exit %d\n%s", r.exit, r.stderr)
	}
	if r := e.run("sync"); r.exit != 0 || r.changed() != 0 {
		t.Errorf("second sync: exit %d, changed %d\n%s", r.exit, r.changed(), r.stderr)
	}
}
