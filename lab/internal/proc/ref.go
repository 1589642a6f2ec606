package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Ref names one process across processes and time: its PID and its start
// time (clock ticks since boot), so that a PID the kernel has given to
// another process since is not mistaken for it. Detached labs persist Refs
// and a later process stops them by Ref.
type Ref struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// RefOf returns the Ref of the running process pid.
func RefOf(pid int) (Ref, error) {
	start, err := startTime(pid)
	if err != nil {
		return Ref{}, err
	}
	return Ref{PID: pid, Start: start}, nil
}

// Alive reports whether the process r names still runs (and is not a zombie).
func (r Ref) Alive() bool {
	if r.PID <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(r.PID) + "/stat")
	if err != nil {
		return false
	}
	f, ok := statFields(stat)
	if !ok || strings.ContainsAny(f[0], "ZX") {
		return false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && start == r.Start
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits until the process
// is gone. A process that is not alive is no error.
func (r Ref) Stop(grace time.Duration) error {
	if !r.Alive() {
		return nil
	}
	if err := syscall.Kill(r.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	if r.waitGone(grace) {
		return nil
	}
	if r.Alive() {
		_ = syscall.Kill(r.PID, syscall.SIGKILL)
	}
	if !r.waitGone(10 * time.Second) {
		return fmt.Errorf("process %d did not exit after SIGKILL", r.PID)
	}
	return nil
}

// Kill sends SIGKILL if the process is alive.
func (r Ref) Kill() {
	if r.Alive() {
		_ = syscall.Kill(r.PID, syscall.SIGKILL)
	}
}

func (r Ref) waitGone(d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if !r.Alive() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// statFields returns the fields of /proc/PID/stat after the command name
// (field 3, the state, is f[0]; field 22, the start time, is f[19]).
func statFields(stat []byte) ([]string, bool) {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(s[i+1:])
	return f, len(f) >= 20
}

func startTime(pid int) (uint64, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f, ok := statFields(stat)
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// StartDetached starts cmd in its own session without a parent-death signal,
// so it outlives this process (and a terminal's hang-up), and reaps it if it
// exits while this process runs. The channel yields cmd.Wait's result.
func StartDetached(cmd *exec.Cmd) (<-chan error, error) {
	setSession(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}
