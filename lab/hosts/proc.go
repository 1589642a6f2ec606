package hosts

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procMatch selects the processes that live inside a lab's hosts: by mount or
// network namespace ("mnt:[4026532…]") or, for processes whose namespaces are
// not known any more (a lab of a dead process, a process that unshared again),
// by a lab directory that their mounts name as an overlay layer.
type procMatch struct {
	mnt, net map[string]bool
	dirs     []string
}

// killMatching sends SIGKILL to every process m selects, except this one, and
// waits up to five seconds for them to be gone. It scans again until a scan
// finds nothing: a process may fork between being listed and being killed.
func killMatching(m procMatch) {
	self := os.Getpid()
	selfMnt, _ := os.Readlink("/proc/self/ns/mnt")
	// Never the machine's own namespaces, whatever the caller passed: a
	// loopback host shares this process's network namespace, and matching
	// it would kill every process on the machine.
	for _, pid := range []int{self, 1} {
		delete(m.mnt, nsID(pid, "mnt"))
		delete(m.net, nsID(pid, "net"))
	}
	delete(m.mnt, "")
	delete(m.net, "")
	deadline := time.Now().Add(5 * time.Second)
	for round := 0; round < 20; round++ {
		killed := killOnce(m, self, selfMnt)
		if len(killed) == 0 {
			return
		}
		for _, pid := range killed {
			for alive(pid) && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
}

func killOnce(m procMatch, self int, selfMnt string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var killed []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !alive(pid) {
			continue
		}
		base := "/proc/" + e.Name()
		mnt, err := os.Readlink(base + "/ns/mnt")
		if err != nil {
			continue
		}
		hit := m.mnt[mnt]
		if !hit && len(m.net) > 0 {
			net, _ := os.Readlink(base + "/ns/net")
			hit = m.net[net]
		}
		if !hit && len(m.dirs) > 0 && mnt != selfMnt {
			info, _ := os.ReadFile(base + "/mountinfo")
			for _, d := range m.dirs {
				hit = hit || bytes.Contains(info, []byte("="+d+"/"))
			}
		}
		if hit && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// alive reports whether pid exists and is not a zombie (a zombie holds no
// namespace and no mount).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return !strings.ContainsRune("ZX", rune(stat[i+2]))
}

// nsID names the namespace of kind ("mnt", "net") that pid is in.
func nsID(pid int, kind string) string {
	s, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + kind)
	return s
}
