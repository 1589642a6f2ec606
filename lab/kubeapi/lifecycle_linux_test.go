package kubeapi_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/kubeapi"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

func TestStopEndsBothProcesses(t *testing.T) {
	bins := kubeapitest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), kubeapitest.StartTimeout)
	defer cancel()
	begin := time.Now()
	srv, err := kubeapi.Start(ctx, kubeapi.Options{Dir: t.TempDir(), Binaries: bins})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server ready in %s", time.Since(begin).Round(time.Millisecond))
	api, etcd := srv.PIDs()
	if !alive(api) || !alive(etcd) {
		t.Fatalf("after Start: apiserver %d alive %v, etcd %d alive %v", api, alive(api), etcd, alive(etcd))
	}
	begin = time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %s", time.Since(begin).Round(time.Millisecond))
	if alive(api) || alive(etcd) {
		t.Errorf("after Stop: apiserver %d alive %v, etcd %d alive %v", api, alive(api), etcd, alive(etcd))
	}
}

// TestProcessesDieWithParent kills (SIGKILL, no cleanup) a child test binary that started a
// server, and checks the kernel takes etcd and kube-apiserver with it.
func TestProcessesDieWithParent(t *testing.T) {
	bins := kubeapitest.Binaries(t)
	// Adopt the helper's orphans, so that we can reap them and leave no zombies behind
	// where PID 1 does not reap (containers).
	setSubreaper(t, true)
	defer setSubreaper(t, false)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$", "-test.v")
	cmd.Env = append(os.Environ(), "MNO_KUBEAPI_HELPER="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var api, etcd int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(strings.TrimSpace(sc.Text()), "PIDS %d %d", &api, &etcd); err == nil {
			break
		}
	}
	if api == 0 || etcd == 0 {
		t.Fatalf("helper did not report its server (binaries %v)", bins)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(time.Minute)
	for _, pid := range []int{api, etcd} {
		for !reaped(t, pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d outlived its killed parent", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// setSubreaper makes this process adopt orphaned descendants (PR_SET_CHILD_SUBREAPER).
func setSubreaper(t *testing.T, on bool) {
	var arg uintptr
	if on {
		arg = 1
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, 36, arg, 0); errno != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
}

// reaped reports whether pid, an adopted orphan, has exited, reaping it if so.
func reaped(t *testing.T, pid int) bool {
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if err == syscall.ECHILD { // not ours: reaped elsewhere, or never adopted
		return !alive(pid)
	}
	if err != nil {
		t.Fatal(err)
	}
	return got == pid
}

// TestHelperServer is TestProcessesDieWithParent's child: it starts a server, prints the PIDs
// and waits to be killed.
func TestHelperServer(t *testing.T) {
	dir := os.Getenv("MNO_KUBEAPI_HELPER")
	if dir == "" {
		t.Skip("helper for TestProcessesDieWithParent")
	}
	srv, err := kubeapi.Start(context.Background(), kubeapi.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	api, etcd := srv.PIDs()
	fmt.Printf("PIDS %d %d\n", api, etcd)
	time.Sleep(time.Hour) // killed long before
}

// alive reports whether pid exists and is not a zombie waiting for a reaper (in a container
// PID 1 may never reap the orphans it inherits).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || !strings.HasPrefix(string(stat[i+1:]), " Z")
}
