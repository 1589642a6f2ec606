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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// TestDetachedOutlivesParent: a detached server survives the process that started it (killed
// without cleanup), Open finds it from its directory, its admin client works at the bind
// address, and Stop, from this process, ends both processes.
func TestDetachedOutlivesParent(t *testing.T) {
	kubeapitest.Binaries(t)
	setSubreaper(t, true)
	defer setSubreaper(t, false)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDetached$", "-test.v")
	cmd.Env = append(os.Environ(), "MNO_KUBEAPI_DETACHED="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "READY") {
	}
	cmd.Process.Kill()
	cmd.Wait()

	srv, err := kubeapi.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if !srv.Running() || !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("after its starter died: running %v, URL %s", srv.Running(), srv.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kubeapitest.Client(t, srv).CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("admin client of the opened server: %v", err)
	}
	api, etcd := srv.PIDs()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, pid := range []int{api, etcd} {
		for !reaped(t, pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d runs after Stop", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if srv.Running() {
		t.Error("Running after Stop")
	}
}

// TestHelperDetached is TestDetachedOutlivesParent's child: it starts a detached server on a
// fixed bind address, says READY and waits to be killed.
func TestHelperDetached(t *testing.T) {
	dir := os.Getenv("MNO_KUBEAPI_DETACHED")
	if dir == "" {
		t.Skip("helper for TestDetachedOutlivesParent")
	}
	if _, err := kubeapi.Start(context.Background(), kubeapi.Options{Dir: dir, Detached: true, BindAddress: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	time.Sleep(time.Hour)
}
