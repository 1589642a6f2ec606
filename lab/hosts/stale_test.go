package hosts_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// TestMain doubles as the helper process of TestStaleCleanup: a lab owner
// that gets killed.
func TestMain(m *testing.M) {
	if os.Getenv("MNO_LAB_STALE_HELPER") == "1" {
		staleHelper()
		return
	}
	if base := os.Getenv("MNO_LAB_DETACHED_HELPER"); base != "" {
		detachedHelper(base)
		return
	}
	os.Exit(m.Run())
}

type staleReport struct {
	Dir, Netns, Link, LinkIndex string
	SSHD, Sleeper               int
	Inside                      bool
}

// inside reports whether pid runs comm in the mount namespace of host.
func inside(pid, host int, comm string) bool {
	c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", host))
	return strings.TrimSpace(string(c)) == comm && a == b && a != "" && running(pid)
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func staleHelper() {
	lab, err := hosts.Start(context.Background(), 2)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	// The test's own lab will have one host and may reuse this lab's slot, so
	// the second host's namespace and link are the ones nothing recreates.
	h := lab.Hosts()[1]
	// A process started inside a host outlives its starter; cleanup must find it.
	sleeper := h.Command(context.Background(), false, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	// Report once nsenter has become sleep inside the host.
	ok := false
	for i := 0; i < 2000 && !ok; i++ {
		time.Sleep(5 * time.Millisecond)
		ok = inside(sleeper.Process.Pid, h.PID, "sleep")
	}
	data, _ := json.Marshal(staleReport{
		Dir: lab.Dir(), Netns: h.Netns, Link: h.Link, LinkIndex: linkIndex(h.Link),
		SSHD: h.PID, Sleeper: sleeper.Process.Pid, Inside: ok,
	})
	fmt.Println(string(data))
	select {} // until killed, without Stop
}

func TestStaleCleanup(t *testing.T) {
	hoststest.Require(t)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "MNO_LAB_STALE_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	var rep staleReport
	if err != nil || json.Unmarshal([]byte(line), &rep) != nil || rep.Sleeper == 0 {
		_ = helper.Process.Kill()
		t.Fatalf("helper said %q, %v", line, err)
	}
	_ = helper.Process.Kill() // SIGKILL: no Stop, no deferred cleanup
	_ = helper.Wait()

	if !rep.Inside {
		t.Fatalf("the helper's sleep never ran inside its host")
	}
	// The sleep outlives its starter (no parent-death signal), so only a
	// cleanup ends it.
	// Starting a lab cleans up what the dead one left. (A test binary running
	// at the same time may have got there first, be cleaning it still, and
	// reuse its slot and so its names: hence the waiting, and identities.)
	hoststest.Start(t, 1)
	deadline := time.Now().Add(20 * time.Second)
	for exists(rep.Dir) || running(rep.SSHD) || running(rep.Sleeper) || rep.Link != "" && linkIndex(rep.Link) == rep.LinkIndex {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: dir %s exists: %v; sshd %d running: %v; sleeper %d running: %v; link %s index %s (was %s)",
				rep.Dir, exists(rep.Dir), rep.SSHD, running(rep.SSHD), rep.Sleeper, running(rep.Sleeper),
				rep.Link, linkIndex(rep.Link), rep.LinkIndex)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rep.Netns != "" && !exists("/sys/class/net/"+rep.Link) && exists("/run/netns/"+rep.Netns) {
		t.Errorf("stale netns %s still there", rep.Netns)
	}
}

// linkIndex tells a link from a later one of the same name.
func linkIndex(name string) string {
	b, _ := os.ReadFile("/sys/class/net/" + name + "/ifindex")
	return strings.TrimSpace(string(b))
}
