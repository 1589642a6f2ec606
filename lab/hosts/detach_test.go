package hosts_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// detachedHelper starts a detached lab of two hosts in baseDir, lets go of
// it, prints its directory and exits: the lab must outlive it.
func detachedHelper(baseDir string) {
	lab, err := hosts.Start(context.Background(), 2, hosts.Detached(), hosts.NoUsers(),
		hosts.Network(hosts.NetworkNamespaces), hosts.BaseDir(baseDir), hosts.Shims("docker"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := lab.Release(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(lab.Dir())
}

// TestDetached: a detached lab outlives the process that started it, is not
// taken for stale by other labs, is found again with Open, and its Stop, from
// another process, removes every process, namespace, link, mount and file.
func TestDetached(t *testing.T) {
	hoststest.Require(t)
	base := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "MNO_LAB_DETACHED_HELPER="+base)
	out, err := helper.Output()
	line := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(line, base) {
		t.Fatalf("helper: %v: %s", err, out)
	}
	lab, err := hosts.Open(line)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			lab.Stop()
		}
	})
	if n := len(lab.Running()); n != 2 {
		t.Fatalf("%d of 2 hosts run after their starter exited", n)
	}
	h := lab.Hosts()[0]
	if h.Name != "host-1" || h.Netns == "" || h.HostKey == "" || lab.Gateway() == "" || lab.LoginUser() != "" {
		t.Fatalf("opened lab: host %+v, gateway %q, login user %q", h, lab.Gateway(), lab.LoginUser())
	}

	// Another lab starting now sweeps stale slots: this one is not stale.
	hoststest.Start(t, 1)
	if n := len(lab.Running()); n != 2 {
		t.Fatalf("another lab's start stopped %d host(s) of the detached lab", 2-n)
	}

	// Fresh machines: root only. Commands run inside; shims may run scripts.
	ctx := context.Background()
	if out, err := h.Command(ctx, true, "sh", "-c", "id -un; hostname; id mno >/dev/null 2>&1 || echo no-mno").Output(); err != nil ||
		string(out) != "root\nhost-1\nno-mno\n" {
		t.Errorf("inside host-1: %v: %q", err, out)
	}
	if err := h.SetShim("docker ps", hosts.ShimResponse{Script: `echo "args: $*"; cat; exit 3`, Stdout: "after\n"}); err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(ctx, true, "docker", "ps", "-q")
	cmd.Stdin = strings.NewReader("in\n")
	out, err = cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || string(out) != "args: ps -q\nin\nafter\n" {
		t.Errorf("script shim: %v, %q", err, out)
	}
	if calls, _ := h.ShimCalls(); len(calls) != 1 || calls[0].Code != 3 || strings.Join(calls[0].Argv, " ") != "docker ps -q" {
		t.Errorf("script shim calls: %+v", calls)
	}
	// A process started inside outlives this test's command; Stop must end it.
	if out, err := h.Command(ctx, true, "sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 &").CombinedOutput(); err != nil {
		t.Fatalf("start a daemon inside: %v: %s", err, out)
	}

	// Stop from a fresh Open, as `mno lab down` does.
	again, err := hosts.Open(line)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{}
	for _, h := range again.Hosts() {
		pids = append(pids, h.PID)
	}
	if err := again.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stopped = true
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("sshd %d still runs", pid)
		}
	}
	for _, h := range again.Hosts() {
		if exists("/run/netns/"+h.Netns) || exists("/sys/class/net/"+h.Link) {
			t.Errorf("%s: netns or link %s left", h.Name, h.Netns)
		}
	}
	if exists(line) {
		t.Errorf("lab dir %s left", line)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), line) {
		t.Errorf("mount of %s left", line)
	}
	if pids := processesWithMount(line); len(pids) > 0 {
		t.Errorf("processes still inside the lab: %v", pids)
	}
	if _, err := hosts.Open(line); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Stop: %v, want not exist", err)
	}
}

// processesWithMount lists processes whose mounts name dir.
func processesWithMount(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err == nil && strings.Contains(string(info), dir+"/") && running(atoi(e.Name())) {
			out = append(out, e.Name())
		}
	}
	return out
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}
