package toolcache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Progress returns a writer for build progress that the build's goroutines (go's output, the
// ticker) can share: writes to w are serialised, and a nil w discards them.
func Progress(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return &syncWriter{w: w}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// GoBuild runs `go build -trimpath -o out args...` in dir with cgo off, building to a
// temporary name and renaming it into place so that a reader never sees half a binary. It
// prints what it runs and, every 30s, how far it got: the packages compiled so far of those
// the binary needs.
func GoBuild(ctx context.Context, dir, out string, progress io.Writer, args ...string) error {
	name := filepath.Base(out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	defer os.Remove(tmp)
	fmt.Fprintf(progress, "building %s (a cold build takes several minutes)\n", name)
	start := time.Now()
	// How many packages there are: a few seconds next to a build of minutes. Without
	// it the progress lines give only the count compiled.
	total := 0
	if list, err := GoOutput(ctx, dir, append([]string{"list", "-deps"}, args...)...); err == nil {
		total = bytes.Count(list, []byte("\n"))
	}
	counter := &packageCounter{out: progress}
	stop := ticker(progress, name, start, counter, total)
	err := goRun(ctx, dir, counter, append([]string{"build", "-v", "-trimpath", "-o", tmp}, args...)...)
	stop()
	counter.flush()
	if ctx.Err() != nil {
		err = ctx.Err() // "signal: killed" would hide that we were interrupted
	}
	if err != nil {
		return fmt.Errorf("building %s: %w", name, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(progress, "built %s in %s (%d packages compiled)\n", out, time.Since(start).Round(time.Second), counter.count())
	return nil
}

// packageCounter takes the output of `go build -v`: it counts the lines naming a package
// as it is compiled and passes every other line (downloads, errors) on to out.
type packageCounter struct {
	mu      sync.Mutex
	out     io.Writer
	n       int
	partial []byte
}

func (c *packageCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := c.partial[:i+1]
		if isPackageLine(line[:i]) {
			c.n++
		} else if _, err := c.out.Write(line); err != nil {
			return len(p), err
		}
		c.partial = c.partial[i+1:]
	}
}

// isPackageLine: an import path alone on its line, as `go build -v` prints them.
func isPackageLine(line []byte) bool {
	return len(line) > 0 && line[0] != '#' && !bytes.ContainsAny(line, " \t:")
}

func (c *packageCounter) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		c.out.Write(append(c.partial, '\n'))
		c.partial = nil
	}
}

func (c *packageCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// ticker prints a line every 30s so that a long build does not look hung.
func ticker(w io.Writer, name string, start time.Time, c *packageCounter, total int) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := c.count()
				of := ""
				if total > 0 {
					// Packages found in the build cache are not compiled (nor printed).
					of = fmt.Sprintf(" of at most %d", total)
				}
				fmt.Fprintf(w, "still building %s (%s, %d packages compiled%s)\n", name, time.Since(start).Round(time.Second), n, of)
			}
		}
	}()
	return func() { close(done) }
}

// GoOutput runs go with args in dir, like the build does, and returns its standard output;
// the error includes its standard error. The builds use it for `go mod download -json`.
func GoOutput(ctx context.Context, dir string, args ...string) ([]byte, error) {
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
