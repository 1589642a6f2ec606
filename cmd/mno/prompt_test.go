package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestTerminalPrompt: with a terminal on stdin, prompt() asks on stderr and
// returns the line typed; without one (a pipe, a file) there is no one to
// ask, and playbooks fall back to their parameters.
func TestTerminalPrompt(t *testing.T) {
	if p := terminalPrompt(strings.NewReader("yes\n"), &bytes.Buffer{}); p != nil {
		t.Error("a reader that is not a terminal got a prompt")
	}
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	if p := terminalPrompt(r, &bytes.Buffer{}); p != nil {
		t.Error("a pipe got a prompt")
	}

	master, slave := openPTY(t)
	var errOut bytes.Buffer
	p := terminalPrompt(slave, &errOut)
	if p == nil {
		t.Fatal("a terminal got no prompt")
	}
	if _, err := master.Write([]byte("yes\n")); err != nil {
		t.Fatal(err)
	}
	got, err := p(context.Background(), "adopt vps-1? ")
	if err != nil || strings.TrimSpace(got) != "yes" {
		t.Errorf("answer %q, %v; want yes", got, err)
	}
	if errOut.String() != "adopt vps-1? " {
		t.Errorf("question shown as %q", errOut.String())
	}
	// A cancelled run does not wait for an answer.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p(ctx, "again? "); err == nil {
		t.Error("a cancelled run waited for an answer")
	}
}
