// Package journal is the one gate every effect passes through.
//
// A builtin describes an effect as an Op (target, kind, description, source
// position, whether it writes) with a Check that computes what would change
// using reads only, and an Apply that performs it. The journal decides
// dry-run behaviour — writes are checked and reported but not applied —
// measures the effect, records whether it changed anything, and reports it as
// human text on stderr and, optionally, as a versioned JSONL event stream.
// Builtins never look at the dry-run flag themselves.
package journal

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/mno-sh/mno/engine/secret"
)

// Status is the outcome class of one effect, as counted in the recap.
type Status string

const (
	StatusOK          Status = "ok"
	StatusChanged     Status = "changed"
	StatusFailed      Status = "failed"
	StatusUnreachable Status = "unreachable"
)

// Change is what a Check predicts or an Apply did.
type Change struct {
	// Changed reports whether the target's state differs (or would differ).
	Changed bool
	// Diff is a unified diff of the change, already free of secrets where the
	// builtin knows them; the journal scrubs it again.
	Diff string
	// Note is a short remark shown after the description ("host key recorded").
	Note string
	// Pre is what the change was computed from, for saved plans: "absent",
	// "sha256:HEX" of a file's content, "resourceVersion:N" of an object;
	// "" when the builtin does not say.
	Pre string
}

// Op describes one effect.
type Op struct {
	Target string // "local", a host name, "cluster"
	Kind   string // "run", "put", "configmap.update", …
	Desc   string // command line or path; the journal redacts it again
	Pos    string // file:line:col of the Starlark call
	// Write marks an effect that changes state: in dry-run it is checked and
	// reported, never applied.
	Write bool
	// Check predicts the change using reads only. Nil means "always changes".
	Check func(ctx context.Context) (Change, error)
	// Apply performs the effect and returns what changed. For reads it is the
	// read itself.
	Apply func(ctx context.Context) (Change, error)
}

// Outcome is returned to the builtin that asked for the effect.
type Outcome struct {
	Change
	// Simulated is true when a write was not applied because of dry-run.
	Simulated bool
	// Applied is true when Apply ran.
	Applied bool
}

// unreachableError marks an error that means the target could not be reached.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// Unreachable wraps err so the journal counts the target as unreachable
// rather than failed.
func Unreachable(err error) error {
	if err == nil {
		return nil
	}
	return unreachableError{err}
}

// IsUnreachable reports whether err was marked with Unreachable.
func IsUnreachable(err error) bool {
	var u unreachableError
	return errors.As(err, &u)
}

// Options configure a Journal.
type Options struct {
	DryRun   bool
	ShowDiff bool // print diffs of real changes too, not only in dry-run
	Verbose  bool // also report reads
	Human    io.Writer
	JSON     io.Writer // nil: no event stream
	Print    io.Writer // where print() goes without an event stream
	// Observers get every event too (after the JSONL writer and the text
	// report), whether or not there is an event stream.
	Observers []Observer
	Redactor  *secret.Redactor
	Now       func() time.Time
	// Guard, when set, is asked before a write that would change is
	// applied (never in dry-run); an error fails the effect unapplied.
	// `mno apply` uses it to perform only the effects of a saved plan.
	Guard func(op Op, ch Change) error
}

// Counts is the recap line of one target.
type Counts struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
}

// Journal records the effects of one run. It is safe for concurrent use.
type Journal struct {
	opts Options
	mu   sync.Mutex
	next int
	// counts per target, and the order targets were first seen in.
	counts  map[string]*Counts
	targets []string
	out     *output
	sources Sources
	// The cluster state's problems (see problem.go).
	problems    []Problem
	seenProblem map[Problem]bool
	stateRead   bool
	// drift: files found changed on targets, by target.
	drift map[string][]string
}

// New returns a journal writing to the outputs in opts.
func New(opts Options) *Journal {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Human == nil {
		opts.Human = io.Discard
	}
	if opts.Print == nil {
		opts.Print = opts.Human
	}
	var obs []Observer
	print := opts.Print
	if opts.JSON != nil {
		obs = append(obs, NewJSONWriter(opts.JSON))
		print = nil // prints are events in the stream
	}
	obs = append(obs, NewTextReport(opts.Human, print, TextOptions{Verbose: opts.Verbose, ShowDiff: opts.ShowDiff, DryRun: opts.DryRun}))
	obs = append(obs, opts.Observers...)
	return &Journal{
		opts:   opts,
		counts: map[string]*Counts{},
		out:    &output{observers: obs, redactor: opts.Redactor, now: opts.Now},
	}
}

// DryRun reports whether writes are simulated. Only engine code and tests
// should need it; builtins express effects as Ops instead.
func (j *Journal) DryRun() bool { return j.opts.DryRun }

// Redactor returns the run's redactor.
func (j *Journal) Redactor() *secret.Redactor { return j.opts.Redactor }

func (j *Journal) target(name string) *Counts {
	c, ok := j.counts[name]
	if !ok {
		c = &Counts{}
		j.counts[name] = c
		j.targets = append(j.targets, name)
	}
	return c
}

// Touch makes a target appear in the recap even if it had no effect yet.
func (j *Journal) Touch(target string) {
	j.mu.Lock()
	j.target(target)
	j.mu.Unlock()
}

// Do runs op through the gate.
func (j *Journal) Do(ctx context.Context, op Op) (Outcome, error) {
	j.mu.Lock()
	j.next++
	id := j.next
	j.target(op.Target)
	j.mu.Unlock()

	start := j.opts.Now()
	j.out.effectStart(id, op)

	var out Outcome
	var err error
	switch {
	case !op.Write:
		out.Change, err = op.Apply(ctx)
		out.Applied = true
	default:
		ch := Change{Changed: true}
		if op.Check != nil {
			ch, err = op.Check(ctx)
		}
		switch {
		case err != nil:
		case !ch.Changed:
			out.Change = ch
		case j.opts.DryRun:
			out.Change = ch
			out.Simulated = true
		case j.opts.Guard != nil && j.guard(op, ch, &err):
			out.Change = ch
		default:
			out.Change, err = op.Apply(ctx)
			out.Applied = true
		}
	}
	if err == nil && ctx.Err() != nil && !out.Applied {
		err = ctx.Err()
	}

	status := StatusOK
	switch {
	case err != nil && IsUnreachable(err):
		status = StatusUnreachable
	case err != nil:
		status = StatusFailed
	case out.Changed:
		status = StatusChanged
	}
	j.mu.Lock()
	c := j.target(op.Target)
	switch status {
	case StatusOK:
		c.OK++
	case StatusChanged:
		c.OK++
		c.Changed++
	case StatusFailed:
		c.Failed++
	case StatusUnreachable:
		c.Unreachable++
	}
	j.mu.Unlock()

	j.out.effectEnd(id, op, out, status, err, j.opts.Now().Sub(start))
	return out, err
}

// guard asks Options.Guard about a write, its description redacted as
// the events have it; true when it refused (err set).
func (j *Journal) guard(op Op, ch Change, err *error) bool {
	op.Desc = j.opts.Redactor.Redact(op.Desc)
	*err = j.opts.Guard(op, ch)
	return *err != nil
}

// Print records a print() from the script.
func (j *Journal) Print(pos, msg string) { j.out.print(pos, msg) }

// Log records an informational message from the script (ctx.log).
func (j *Journal) Log(pos, msg string) { j.out.message("log", pos, "", msg) }

// Warn records a warning (ctx.warn, or a builtin's).
func (j *Journal) Warn(pos, target, msg string) { j.out.message("warning", pos, target, msg) }

// Start emits the run-start event.
func (j *Journal) Start(runID, playbook string, params map[string]string) {
	j.out.runStart(runID, playbook, j.opts.DryRun, params, j.sources)
}

// Sources is what the run's header says about where its files came from.
type Sources struct {
	Workspace string   // the workspace root, "" for none
	FromDisk  []string // files read from disk instead of the binary
	Note      string   // how the playbook argument was resolved, if not literally
	SHA256    string   // of the playbook's source
}

// SetSources records, for the run-start event, the workspace and the files
// that came from disk rather than from the binary (call it before Start).
func (j *Journal) SetSources(workspace string, fromDisk []string, note string) {
	j.sources = Sources{Workspace: workspace, FromDisk: fromDisk, Note: note}
}

// SetSourceHash records the sha256 of the playbook's source for the
// run-start event (call it before Start).
func (j *Journal) SetSourceHash(sum string) { j.sources.SHA256 = sum }

// Drift records that target was found changed by someone else since its
// last successful sync: file names what differs. It is reported as a
// warning line and a "drift" event; Drifted lists the targets.
func (j *Journal) Drift(pos, target, file, msg string) {
	j.mu.Lock()
	if j.drift == nil {
		j.drift = map[string][]string{}
	}
	j.drift[target] = append(j.drift[target], file)
	j.mu.Unlock()
	j.out.emit(Event{Type: "drift", Pos: pos, Target: target, File: j.out.r(file), Message: j.out.r(msg)})
}

// Drifted returns the files found drifted, by target.
func (j *Journal) Drifted() map[string][]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	m := make(map[string][]string, len(j.drift))
	for k, v := range j.drift {
		m[k] = append([]string(nil), v...)
	}
	return m
}

// Failed reports whether any target had a failed or unreachable effect.
func (j *Journal) Failed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range j.counts {
		if c.Failed > 0 || c.Unreachable > 0 {
			return true
		}
	}
	return false
}

// TargetFailed reports whether target had a failed or unreachable effect.
func (j *Journal) TargetFailed(target string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	c, ok := j.counts[target]
	return ok && (c.Failed > 0 || c.Unreachable > 0)
}

// Recap returns a copy of the per-target counts, in first-seen order.
func (j *Journal) Recap() ([]string, map[string]Counts) {
	j.mu.Lock()
	defer j.mu.Unlock()
	names := append([]string(nil), j.targets...)
	m := make(map[string]Counts, len(j.counts))
	for k, v := range j.counts {
		m[k] = *v
	}
	return names, m
}

// Finish renders the recap and the run-end event with the exit code.
func (j *Journal) Finish(exitCode int, runErr string, elapsed time.Duration) {
	names, counts := j.Recap()
	problems, _ := j.StateProblems()
	j.out.recap(names, counts, problems, exitCode, runErr, elapsed)
}
