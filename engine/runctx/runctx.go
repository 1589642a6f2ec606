// Package runctx holds the one thread-local of a run: its context,
// configuration, journal, redactor and per-run resources (connection pools,
// API clients). Builtins reach it with From(thread).
package runctx

import (
	"context"
	"fmt"
	"sync"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/secret"
)

const localKey = "mno.run"

// Config is what builtins need to know about the control plane they run on.
type Config struct {
	Home        string // $MNO_HOME: identity and known_hosts live here
	Identity    string // private key file used for SSH
	Kubeconfig  string // explicit --kubeconfig, "" to discover
	KubeContext string // explicit --context
	Root        string // workspace root, "" when running embedded files only
	Getenv      func(string) string
	// Prompt asks the user a question at the terminal and returns the
	// line typed; nil when stdin is not a terminal (prompt() then
	// returns None). It serialises concurrent questions itself.
	Prompt func(ctx context.Context, question string) (string, error)
}

// File is a file read by ReadFile.
type File struct {
	Display  string // name in positions and messages
	Data     []byte
	Embedded bool
	// Private is set for a file on disk that others may not read (no
	// world-read bit): its content is treated as secret material.
	Private bool
}

// Run is the state of one playbook run shared by all its threads.
type Run struct {
	ID       string
	Playbook string
	DryRun   bool
	Ctx      context.Context
	Journal  *journal.Journal
	Redactor *secret.Redactor
	Config   Config
	// ReadFile reads a file relative to the Starlark file that is executing
	// (template.file), confined to the workspace and the embedded files; set
	// by the engine's loader.
	ReadFile func(thread *starlark.Thread, path string) (File, error)

	newThread func(name string) *starlark.Thread

	mu        sync.Mutex
	threads   map[*starlark.Thread]struct{}
	cancelled string
	resources map[any]*resource
	closers   []func()
	closed    bool
}

type resource struct {
	once sync.Once
	val  any
	err  error
}

// New returns a run; the engine sets the thread factory with SetThreadFactory.
func New(ctx context.Context, id, playbook string, dry bool, j *journal.Journal, red *secret.Redactor, cfg Config) *Run {
	r := &Run{ID: id, Playbook: playbook, DryRun: dry, Ctx: ctx, Journal: j, Redactor: red, Config: cfg,
		threads: map[*starlark.Thread]struct{}{}, resources: map[any]*resource{}}
	if r.Config.Getenv == nil {
		r.Config.Getenv = func(string) string { return "" }
	}
	go func() {
		<-ctx.Done()
		r.cancelAll(cancelReason(ctx))
	}()
	return r
}

func cancelReason(ctx context.Context) string {
	if c := context.Cause(ctx); c != nil && c != context.Canceled {
		return c.Error()
	}
	return "run cancelled"
}

// Attach makes r the run of thread.
func Attach(thread *starlark.Thread, r *Run) { thread.SetLocal(localKey, r) }

// From returns the run attached to thread. A thread without a run is a wiring
// bug in mno, not a user error, hence the panic.
func From(thread *starlark.Thread) *Run {
	r, ok := thread.Local(localKey).(*Run)
	if !ok {
		panic("mno: starlark thread has no run attached (runctx.Attach was not called)")
	}
	return r
}

// SetThreadFactory sets how new threads (for parallel) are configured.
func (r *Run) SetThreadFactory(f func(name string) *starlark.Thread) { r.newThread = f }

// NewThread returns a thread configured like the main one (load, print, step
// budget, this run attached) that is cancelled with the run. Call release
// when it is done.
func (r *Run) NewThread(name string) (thread *starlark.Thread, release func()) {
	t := r.newThread(name)
	Attach(t, r)
	r.Track(t)
	return t, func() { r.untrack(t) }
}

// Track makes thread cancel when the run's context ends.
func (r *Run) Track(t *starlark.Thread) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancelled != "" {
		t.Cancel(r.cancelled)
		return
	}
	r.threads[t] = struct{}{}
}

func (r *Run) untrack(t *starlark.Thread) {
	r.mu.Lock()
	delete(r.threads, t)
	r.mu.Unlock()
}

func (r *Run) cancelAll(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancelled = reason
	for t := range r.threads {
		t.Cancel(reason)
	}
}

// Secret wraps value as a secret and registers it with the redactor.
func (r *Run) Secret(value string) *secret.Secret {
	r.Redactor.Add(value)
	return secret.New(value)
}

// Resource returns the run's singleton of type T for key, creating it once
// with create. Errors are cached too, so a failing client is not retried per
// call. It is a function, not a method, because Go methods cannot have type
// parameters. Each package keys its resources with an unexported type of its
// own, so a key always holds the same T; a key used with two types is a bug
// in mno, hence the panic.
func Resource[T any](r *Run, key any, create func() (T, error)) (T, error) {
	r.mu.Lock()
	res, ok := r.resources[key]
	if !ok {
		res = &resource{}
		r.resources[key] = res
	}
	r.mu.Unlock()
	res.once.Do(func() { res.val, res.err = create() })
	v, ok := res.val.(T)
	if !ok && res.val != nil {
		panic(fmt.Sprintf("mno: run resource %T holds %T, not %T", key, res.val, v))
	}
	return v, res.err
}

// OnClose registers f to run when the run ends, in reverse order.
func (r *Run) OnClose(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		go f()
		return
	}
	r.closers = append(r.closers, f)
}

// Close runs the OnClose functions. It is idempotent.
func (r *Run) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	cl := r.closers
	r.closers = nil
	r.mu.Unlock()
	for i := len(cl) - 1; i >= 0; i-- {
		cl[i]()
	}
}

// Err returns the run's cancellation error, if any.
func (r *Run) Err() error {
	if err := r.Ctx.Err(); err != nil {
		return fmt.Errorf("%s", cancelReason(r.Ctx))
	}
	return nil
}
