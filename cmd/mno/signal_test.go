package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptExitCode: SIGINT cancels every thread, including running
// local.run commands inside parallel, and mno exits 130.
func TestInterruptExitCode(t *testing.T) {
	dir := t.TempDir()
	book := filepath.Join(dir, "slow.star")
	os.WriteFile(book, []byte(`
def work(i):
    local.run(["sh", "-c", "touch started.$0; sleep 60; : sigint-marker-77e1", str(i)])

def main(ctx):
    parallel(work, [1, 2, 3])
`), 0o644)
	cmd := exec.Command("mno", "run", book)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		waitFor(t, filepath.Join(dir, "started."+string(rune('0'+i))))
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("mno did not stop after SIGINT; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted: cancelling the run") {
		t.Errorf("stderr lacks the interrupt notice:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "command cancelled (killed): interrupted") {
		t.Errorf("stderr does not report the killed commands:\n%s", stderr.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processesWith("sigint-marker-77e1")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("commands still running after SIGINT: %v", processesWith("sigint-marker-77e1"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
