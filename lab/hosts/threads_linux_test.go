package hosts_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// TestNamespacesStayOnHostThreads checks that a host's namespaces live on the
// thread that starts its sshd and on no other, wherever the Go scheduler runs
// the goroutine that makes them. In particular never on the main thread: the
// runtime never ends it, and /proc/PID/ns and /proc/PID/mountinfo report its
// namespaces as the whole process's, so the test binary would look like it
// lives inside a host. Many concurrent starts put some host goroutine on the
// main thread in practice; startHost must hand the host to another thread.
// Callers need no TestMain that pins the main goroutine.
func TestNamespacesStayOnHostThreads(t *testing.T) {
	const n = 20
	self := os.Getpid()
	outside := threadMountNS(self, self)
	if outside == "" {
		t.Fatal("cannot read this process's mount namespace")
	}
	for round := 1; round <= 3; round++ {
		lab := hoststest.Start(t, n)
		hostNS := map[string]string{}
		for _, h := range lab.Hosts() {
			hostNS[threadMountNS(h.PID, h.PID)] = h.Name
		}
		if got := threadMountNS(self, self); got != outside {
			t.Fatalf("round %d: the main thread is in the mount namespace of %q (%s), not this machine's %s", round, hostNS[got], got, outside)
		}
		if inside := threadsIn(self, hostNS); len(inside) != n {
			t.Errorf("round %d: %d threads of this process are inside hosts, want one per host (%d): %v", round, len(inside), n, inside)
		}
		if err := lab.Stop(); err != nil {
			t.Fatal(err)
		}
		// Host threads end with their goroutines, soon after Stop.
		deadline := time.Now().Add(10 * time.Second)
		for inside := threadsIn(self, hostNS); len(inside) > 0; inside = threadsIn(self, hostNS) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: threads still inside stopped hosts: %v", round, inside)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// threadMountNS names the mount namespace of thread tid of process pid.
func threadMountNS(pid, tid int) string {
	s, _ := os.Readlink(fmt.Sprintf("/proc/%d/task/%d/ns/mnt", pid, tid))
	return s
}

// threadsIn lists the threads of pid that are in one of the namespaces ns
// names, with the host each is in.
func threadsIn(pid int, ns map[string]string) []string {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []string
	for _, e := range tasks {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if host, ok := ns[threadMountNS(pid, tid)]; ok {
			out = append(out, fmt.Sprintf("thread %d in %s", tid, host))
		}
	}
	return out
}
