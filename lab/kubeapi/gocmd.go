package kubeapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// goEnv is the environment of every go command the build runs: static binaries, the throwaway
// module on its own (no go.work from a parent directory), go.sum filled in as needed.
func goEnv() []string {
	return append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false")
}

func goCommand(ctx context.Context, dir string, args ...string) (*exec.Cmd, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("building needs the go command: %w", err)
	}
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = dir
	cmd.Env = goEnv()
	setGroupKill(cmd) // cancelling must stop the compilers too, not only go
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

// goRun runs go with args in dir, its output going to progress.
func goRun(ctx context.Context, dir string, progress io.Writer, args ...string) error {
	cmd, err := goCommand(ctx, dir, args...)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = progress, progress
	fmt.Fprintf(progress, "+ (cd %s && go %s)\n", dir, shellJoin(args))
	return cmd.Run()
}

// shellJoin renders args for a progress line that can be pasted into a shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// goOutput runs go with args in dir and returns its standard output; the error includes
// its standard error.
func goOutput(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd, err := goCommand(ctx, dir, args...)
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, err
}

// syncWriter serialises writes from the build's goroutines (go's output, the ticker).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
