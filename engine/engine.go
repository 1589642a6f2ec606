// Package engine runs playbooks: load → execute main(ctx, **params) → report.
//
// It wires the loader, the run context, the journal and the builtin modules
// together; the builtins themselves know nothing of the CLI.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/diag"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/loader"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/engine/starkit"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1 // script or usage error
	ExitTargetFail  = 2 // some target failed
	ExitInterrupted = 130
)

// ErrInterrupted is the cancellation cause the CLI uses for SIGINT/SIGTERM.
var ErrInterrupted = errors.New("interrupted")

// DefaultMaxSteps is the per-thread step budget: far above any sane playbook
// (a sync of 1000 hosts uses a few million) yet it stops a runaway loop in
// seconds.
const DefaultMaxSteps = 1_000_000_000

// Options configure one run.
type Options struct {
	Playbook string   // path or bare name
	Params   []string // key=value
	DryRun   bool
	ShowDiff bool
	Verbose  bool
	JSON     bool // JSONL events on Stdout
	Timeout  time.Duration
	MaxSteps uint64
	Root     string // --root; "" to discover
	// AllowRead are directories outside the workspace that load() and
	// template.file may read (--allow-read).
	AllowRead []string
	Config    runctx.Config
	Embedded  fs.FS
	// Globals are predeclared in addition to the builtin modules (tests use
	// them to hand scripts the addresses of their servers).
	Globals starlark.StringDict
	Stdout  io.Writer
	Stderr  io.Writer
}

// Result is the outcome of Run.
type Result struct {
	Exit  int
	Err   error // the script or usage error, if any
	RunID string
	// Targets are the recap counts per target.
	Targets map[string]journal.Counts
	// Problems are the cluster state's problems the run found; StateRead
	// says whether it read the state at all (so no problems means none).
	Problems  []journal.Problem
	StateRead bool
}

// NewRunID returns a sortable, unique run id.
func NewRunID() string {
	var b [3]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// Session is the wiring of one run: loader, journal, run context and main
// thread. Run uses it for playbooks; tests and `mno test` use it for scripts.
type Session struct {
	Loader  *loader.Loader
	Journal *journal.Journal
	Run     *runctx.Run
	Thread  *starlark.Thread
	opts    Options
	cancel  func()
	start   time.Time
}

// NewSession prepares a run of the playbook (or script) named in o.Playbook
// as far as resolving it; nothing is executed yet. Close it when done.
func NewSession(ctx context.Context, o Options) (*Session, *loader.Source, error) {
	if o.MaxSteps == 0 {
		o.MaxSteps = DefaultMaxSteps
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	root, opts, err := Workspace(o.Root, o.Playbook, o.AllowRead)
	if err != nil {
		return nil, nil, &UsageError{Msg: err.Error()}
	}
	red := secret.NewRedactor()
	predeclared := Predeclared()
	for k, v := range o.Globals {
		predeclared[k] = v
	}
	ld := loader.New(root, o.Embedded, predeclared, opts...)
	src, err := ld.ResolvePlaybook(o.Playbook)
	if err != nil {
		return nil, nil, &UsageError{Msg: err.Error()}
	}
	var jsonOut io.Writer
	if o.JSON {
		jsonOut = o.Stdout
	}
	jr := journal.New(journal.Options{DryRun: o.DryRun, ShowDiff: o.ShowDiff, Verbose: o.Verbose,
		Human: o.Stderr, JSON: jsonOut, Print: o.Stdout, Redactor: red})

	runCtx, cancel := context.WithCancelCause(ctx)
	cancelAll := func() { cancel(nil) }
	if o.Timeout > 0 {
		var cancelT context.CancelFunc
		runCtx, cancelT = context.WithTimeoutCause(runCtx, o.Timeout, fmt.Errorf("run timed out after %s (--timeout)", o.Timeout))
		cancelAll = func() { cancelT(); cancel(nil) }
	}
	cfg := o.Config
	cfg.Root = ld.Root()
	id := NewRunID()
	run := runctx.New(runCtx, id, src.Display, o.DryRun, jr, red, cfg)
	run.ReadFile = func(thread *starlark.Thread, p string) (runctx.File, error) {
		src, private, err := ld.ReadFile(thread, p)
		if err != nil {
			return runctx.File{}, err
		}
		return runctx.File{Display: src.Display, Data: src.Data, Embedded: src.Embedded, Private: private}, nil
	}
	maxSteps := o.MaxSteps
	run.SetThreadFactory(func(name string) *starlark.Thread {
		t := &starlark.Thread{Name: name, Load: ld.Load}
		t.Print = func(t *starlark.Thread, msg string) {
			jr.Print(starkit.CallerPos(t), msg)
		}
		t.SetMaxExecutionSteps(maxSteps)
		t.OnMaxSteps = func(t *starlark.Thread) {
			t.Cancel(fmt.Sprintf("step budget of %d exceeded (--max-steps); is there a runaway loop?", maxSteps))
		}
		loader.InitThread(t)
		return t
	})
	thread, _ := run.NewThread("main")
	return &Session{Loader: ld, Journal: jr, Run: run, Thread: thread, opts: o, cancel: cancelAll, start: time.Now()}, src, nil
}

// Workspace decides the workspace root of a run of playbook: root when given
// (--root), else the one found above the playbook's directory (a path) or the
// current directory (a name) — refused when it is not safe to run code from.
// It returns the loader options that go with it.
func Workspace(root, playbook string, allowRead []string) (string, []loader.Option, error) {
	opts := []loader.Option{loader.AllowRead(allowRead...)}
	if root != "" {
		return root, opts, nil
	}
	start := "."
	if strings.ContainsRune(playbook, '/') || strings.HasSuffix(playbook, ".star") {
		start = filepath.Dir(playbook)
	}
	root, err := loader.DiscoverRoot(start)
	if err != nil {
		return "", nil, err
	}
	return root, append(opts, loader.Discovered()), nil
}

// Resolve says which file a run of o.Playbook would execute (its display
// name, and how the argument was resolved when not literally), without
// running anything; `mno watch` uses it to fail fast on a typo.
func Resolve(o Options) (display, note string, err error) {
	root, opts, err := Workspace(o.Root, o.Playbook, o.AllowRead)
	if err != nil {
		return "", "", err
	}
	ld := loader.New(root, o.Embedded, nil, opts...)
	src, err := ld.ResolvePlaybook(o.Playbook)
	if err != nil {
		return "", "", err
	}
	return src.Display, ld.Note(), nil
}

// Exec executes src's top level and returns its globals; a panic in a
// builtin becomes an error.
func (s *Session) Exec(src *loader.Source) (starlark.StringDict, error) {
	return protect(func() (starlark.StringDict, error) { return s.Loader.Exec(s.Thread, src) })
}

// Call calls fn on the session's main thread; a panic becomes an error.
func (s *Session) Call(fn starlark.Callable, args starlark.Tuple, kwargs []starlark.Tuple) (v starlark.Value, err error) {
	_, err = protect(func() (starlark.StringDict, error) {
		v, err = starlark.Call(s.Thread, fn, args, kwargs)
		return nil, err
	})
	return v, err
}

// Close releases the run's resources (connections, leases) and cancels it.
func (s *Session) Close() {
	s.Run.Close()
	s.cancel()
}

// Run executes a playbook and renders its report.
func Run(ctx context.Context, o Options) (res Result) {
	s, src, err := NewSession(ctx, o)
	if err != nil {
		fmt.Fprint(o.Stderr, diag.Render(err, nil))
		return Result{Exit: ExitError, Err: err}
	}
	defer s.Close()
	res.RunID = s.Run.ID
	started := false
	finish := func(code int, err error) Result {
		if errors.Is(context.Cause(ctx), ErrInterrupted) {
			code = ExitInterrupted
		} else if code == ExitOK && s.Journal.Failed() {
			code = ExitTargetFail
		}
		msg := ""
		if err != nil {
			rendered := diag.Render(err, s.Run.Redactor)
			fmt.Fprint(s.opts.Stderr, rendered)
			msg = strings.TrimSpace(strings.SplitN(rendered, "\n", 2)[0])
			var ue *UsageError
			if errors.As(err, &ue) && ue.Usage != "" {
				fmt.Fprintf(s.opts.Stderr, "\n%s", ue.Usage)
			}
		}
		if started {
			s.Journal.Finish(code, msg, time.Since(s.start))
		}
		_, res.Targets = s.Journal.Recap()
		res.Problems, res.StateRead = s.Journal.StateProblems()
		res.Exit, res.Err = code, err
		return res
	}

	globals, err := s.Exec(src)
	if err != nil {
		return finish(exitFor(s.Journal), err)
	}
	mainV, ok := globals["main"]
	if !ok {
		return finish(ExitError, fmt.Errorf("%s: no main(ctx, ...) function defined", src.Display))
	}
	mainFn, ok := mainV.(*starlark.Function)
	if !ok {
		return finish(ExitError, fmt.Errorf("%s: main is a %s, want a function main(ctx, ...)", src.Display, mainV.Type()))
	}
	params, err := signature(mainFn)
	if err != nil {
		return finish(ExitError, fmt.Errorf("%s: %v", mainFn.Position(), err))
	}
	doc := moduleDoc(src.Display, src.Data)
	if doc == "" {
		doc = mainFn.Doc()
	}
	kwargs, raw, err := bindParams(o.Params, params, mainFn.HasKwargs(), usage(o.Playbook, doc, params))
	if err != nil {
		return finish(ExitError, err)
	}
	started = true
	s.Journal.SetSources(s.Loader.Root(), s.Loader.FromDisk(), s.Loader.Note())
	s.Journal.Start(s.Run.ID, src.Display, raw)
	if _, err := s.Call(mainFn, starlark.Tuple{makeCtx(s.Run, src.Display, raw)}, kwargs); err != nil {
		return finish(exitFor(s.Journal), err)
	}
	return finish(ExitOK, nil)
}

// exitFor maps a script error to an exit code: a failed target wins.
func exitFor(jr *journal.Journal) int {
	if jr.Failed() {
		return ExitTargetFail
	}
	return ExitError
}

// protect turns a panic inside a builtin into an error, so users never see a
// Go stack trace; MNO_DEBUG=1 re-panics for mno's developers.
func protect(f func() (starlark.StringDict, error)) (g starlark.StringDict, err error) {
	defer func() {
		if p := recover(); p != nil {
			if os.Getenv("MNO_DEBUG") != "" {
				panic(p)
			}
			err = fmt.Errorf("internal error in mno (please report it; MNO_DEBUG=1 shows details): %v", p)
		}
	}()
	return f()
}

func makeCtx(run *runctx.Run, playbook string, raw map[string]string) starlark.Value {
	params := starlark.NewDict(len(raw))
	for k, v := range raw {
		params.SetKey(starlark.String(k), starlark.String(v))
	}
	params.Freeze()
	return starlarkstruct.FromStringDict(starlark.String("ctx"), starlark.StringDict{
		"dry_run":     starlark.Bool(run.DryRun),
		"run_id":      starlark.String(run.ID),
		"playbook":    starlark.String(playbook),
		"params":      params,
		"log":         starlark.NewBuiltin("ctx.log", runctx.Log),
		"warn":        starlark.NewBuiltin("ctx.warn", runctx.Warn),
		"fail_target": starlark.NewBuiltin("ctx.fail_target", failTarget),
	})
}

// failTarget records a failure of a target that no effect reported (bad data
// for one node, say), so the run exits 2 while the script carries on.
func failTarget(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target, msg string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "target", &target, "msg", &msg); err != nil {
		return nil, err
	}
	r := runctx.From(t)
	if r.Journal.TargetFailed(target) {
		return starlark.None, nil // already counted by the effect that failed
	}
	r.Journal.Do(r.Ctx, journal.Op{Target: target, Kind: "check", Desc: "marked failed", Pos: starkit.CallerPos(t),
		Apply: func(context.Context) (journal.Change, error) { return journal.Change{}, errors.New(msg) }})
	return starlark.None, nil
}
