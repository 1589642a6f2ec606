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

	"github.com/mno-sh/mno/lab/internal/proc"
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
// first works out what must be compiled (see Work), then prints what it runs and, every 30s,
// how far it got and an estimate of the time left; other processes read the same in its
// Status (<cache>/status/NAME.json, the cache being out's grandparent directory).
func GoBuild(ctx context.Context, dir, out string, progress io.Writer, args []string, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return goBuild(ctx, dir, out, progress, 30*time.Second, o, args...)
}

// Option changes how GoBuild builds.
type Option func(*options)

type options struct {
	queue   bool
	ownLock string
}

// Queue makes the build wait, after finding what to compile (which downloads
// the modules, mostly network), until no other build of the same cache holds
// its lock (<cache>/src/*.lock other than ownLock, the caller's), so two
// builds do not share the CPU: the lab builds Traefik in the background while
// the kube-apiserver it needs first compiles.
func Queue(ownLock string) Option {
	return func(o *options) { o.queue, o.ownLock = true, ownLock }
}

func goBuild(ctx context.Context, dir, out string, progress io.Writer, every time.Duration, o options, args ...string) (err error) {
	name := filepath.Base(out)
	cacheDir := filepath.Dir(filepath.Dir(out))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	defer os.Remove(tmp)
	self, _ := proc.RefOf(os.Getpid())
	start := time.Now()
	st := Status{Name: name, Binary: out, Builder: self, Phase: PhasePlanning, Started: start.UTC(), Updated: start.UTC()}
	save := func() {
		st.Updated = time.Now().UTC()
		if err := writeStatus(cacheDir, st); err != nil {
			fmt.Fprintf(progress, "%s: cannot record the build's status: %v\n", name, err)
		}
	}
	save()
	defer func() {
		if err != nil {
			st.Phase, st.Error = PhaseFailed, err.Error()
			save()
		}
	}()
	fmt.Fprintf(progress, "building %s: finding what to compile (go list; the first time it downloads the modules)\n", name)
	work, perr := planWork(ctx, dir, args)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rate := machineRate(cacheDir)
	if perr != nil {
		fmt.Fprintf(progress, "%s: cannot tell what to compile, so no estimate of the time left: %v\n", name, perr)
	} else {
		est, _ := estimateLeft(work, 0, 0, rate)
		fmt.Fprintf(progress, "%s: %d packages to compile (%d already in the build cache), %s on this machine\n",
			name, work.Packages, work.Cached, roughly(est))
		st.Left = est
	}
	st.Packages, st.Cached, st.Total = work.Packages, work.Cached, work.Total
	if o.queue {
		if err := queue(ctx, cacheDir, o.ownLock, &st, save, progress, every); err != nil {
			return err
		}
	}
	st.Phase = PhaseCompiling
	save()
	start = time.Now() // the rate is the compiler's: from here
	counter := &packageCounter{out: progress, work: work}
	stop := ticker(every, func() {
		st.Compiled, st.Done = counter.progress()
		elapsed := time.Since(start)
		st.Left, _ = estimateLeft(work, st.Done, elapsed, rate)
		if st.Compiled >= st.Packages && st.Packages > 0 {
			st.Left = 0 // linking, or go compiles more than planned: no honest estimate
		}
		save()
		fmt.Fprintf(progress, "still building %s\n", st.Line())
	})
	err = goRun(ctx, dir, counter, append([]string{"build", "-v", "-trimpath", "-o", tmp}, args...)...)
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
	st.Compiled, st.Done = counter.progress()
	st.Phase, st.Took, st.Left = PhaseBuilt, time.Since(start), 0 // Took: compiling and linking
	if st.Total == 0 {
		st.Total = st.Done
	}
	save()
	fmt.Fprintf(progress, "built %s in %s (%d packages compiled)\n", out, st.Took.Round(time.Second), st.Compiled)
	return nil
}

// queue waits while another build of cacheDir holds its lock (a Fill in
// progress), reporting the wait in st.
func queue(ctx context.Context, cacheDir, ownLock string, st *Status, save func(), progress io.Writer, every time.Duration) error {
	own := st.Left
	var said time.Time
	for {
		busy := busyLocks(filepath.Join(cacheDir, "src"), ownLock)
		if len(busy) == 0 {
			return nil
		}
		var ahead time.Duration
		var lines []string
		for _, s := range Running(cacheDir) {
			if s.Name != st.Name {
				ahead = max(ahead, s.Left)
				lines = append(lines, s.Line())
			}
		}
		st.Phase, st.Left = PhaseQueued, own+ahead
		if ahead == 0 {
			st.Left = 0 // the build ahead gives no estimate: neither can this one
		}
		save()
		if time.Since(said) >= every {
			what := strings.Join(busy, ", ")
			if len(lines) > 0 {
				what = strings.Join(lines, "; ")
			}
			fmt.Fprintf(progress, "%s waits for the build ahead of it to finish: %s\n", st.Name, what)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// packageCounter takes the output of `go build -v`: it counts the lines naming a package
// as it is compiled, adds up their weights, and passes every other line (downloads,
// errors) on to out.
type packageCounter struct {
	mu      sync.Mutex
	out     io.Writer
	work    Work
	n       int
	done    int64
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
			c.done += c.work.weight(string(line[:i]))
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

// progress returns the packages compiled and their weight.
func (c *packageCounter) progress() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.done
}

// ticker calls f every interval until stop is called, so that a long build
// does not look hung.
func ticker(every time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(done); <-finished }
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
