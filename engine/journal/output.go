package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mno-sh/mno/engine/secret"
)

// EventVersion is the version of the JSONL event schema. Consumers should
// ignore unknown fields and refuse unknown versions.
const EventVersion = 1

// Event is one line of the JSONL stream.
type Event struct {
	V          int               `json:"v"`
	Type       string            `json:"type"` // run_start effect_start effect_end print log warning drift problem recap
	Time       string            `json:"time"`
	RunID      string            `json:"run_id,omitempty"`
	Playbook   string            `json:"playbook,omitempty"`
	DryRun     bool              `json:"dry_run,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	ID         int               `json:"id,omitempty"`
	Target     string            `json:"target,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Desc       string            `json:"desc,omitempty"`
	Pos        string            `json:"pos,omitempty"`
	Write      bool              `json:"write,omitempty"`
	Status     Status            `json:"status,omitempty"`
	Changed    *bool             `json:"changed,omitempty"`
	Simulated  bool              `json:"simulated,omitempty"`
	Diff       string            `json:"diff,omitempty"`
	Note       string            `json:"note,omitempty"`
	Pre        string            `json:"pre,omitempty"`
	Error      string            `json:"error,omitempty"`
	DurationMS *float64          `json:"duration_ms,omitempty"`
	Message    string            `json:"message,omitempty"`
	Targets    map[string]Counts `json:"targets,omitempty"`
	Exit       *int              `json:"exit,omitempty"`
	// run_start: where the files came from.
	Workspace string   `json:"workspace,omitempty"`
	FromDisk  []string `json:"from_disk,omitempty"`
	Resolved  string   `json:"resolved,omitempty"`
	// run_start: the sha256 of the playbook's source.
	SourceSHA256 string `json:"source_sha256,omitempty"`
	// recap: the targets in the order they were first seen.
	Order []string `json:"target_order,omitempty"`
	// drift: the file (or object) found changed on the target.
	File string `json:"file,omitempty"`
	// problem: one finding about the cluster's state (its fields inline);
	// recap: all of them.
	*Problem
	Problems []Problem `json:"problems,omitempty"`
}

// Observer receives every event of a run, in order, already redacted: the
// JSONL writer, the text report and Go callers (scenario, run records) alike.
// Event is called with the journal's output lock held, so events arrive one
// at a time; an observer must not call back into the journal.
type Observer interface {
	Event(e Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Event)

// Event calls f(e).
func (f ObserverFunc) Event(e Event) { f(e) }

// jsonWriter is the JSONL event stream as an observer.
type jsonWriter struct{ w io.Writer }

// NewJSONWriter returns an observer writing each event as one JSON line.
func NewJSONWriter(w io.Writer) Observer { return jsonWriter{w} }

func (j jsonWriter) Event(e Event) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return
	}
	j.w.Write(buf.Bytes())
}

// TextOptions choose what the text report shows.
type TextOptions struct {
	Verbose  bool // report reads too
	ShowDiff bool // diffs of real changes too, not only in dry-run
	// DryRun shows diffs of simulated changes before any run_start event
	// (a session that runs a script without a run); run_start sets it.
	DryRun bool `json:"-"`
}

// TextReport renders events as the human report: the header, one line per
// write (or failure, or every effect with Verbose), diffs, messages and the
// recap. Prints go to print when it is not nil (without an event stream
// they are the script's output on stdout).
type TextReport struct {
	human, print io.Writer
	opts         TextOptions
	dry          bool
	writes       map[int]Event // effect_start events by id, until their end
}

// NewTextReport returns the text report writing to human (and prints to print).
func NewTextReport(human, print io.Writer, opts TextOptions) *TextReport {
	if human == nil {
		human = io.Discard
	}
	return &TextReport{human: human, print: print, opts: opts, dry: opts.DryRun, writes: map[int]Event{}}
}

// Event renders one event.
func (t *TextReport) Event(e Event) {
	switch e.Type {
	case "run_start":
		t.dry = e.DryRun
		mode := ""
		if e.DryRun {
			mode = " (dry run: nothing will be changed)"
		}
		fmt.Fprintf(t.human, "RUN %s [%s]%s\n", e.Playbook, e.RunID, mode)
		if e.Resolved != "" {
			fmt.Fprintf(t.human, "note: %s\n", e.Resolved)
		}
		if len(e.FromDisk) > 0 {
			where := ""
			if e.Workspace != "" {
				where = " (workspace " + e.Workspace + ")"
			}
			fmt.Fprintf(t.human, "from disk%s: %s; the rest from the binary\n", where, strings.Join(e.FromDisk, ", "))
		}
	case "effect_start":
		t.writes[e.ID] = e
	case "effect_end":
		start := t.writes[e.ID]
		delete(t.writes, e.ID)
		t.effect(start, e)
	case "print":
		if t.print != nil {
			fmt.Fprintln(t.print, e.Message)
		}
	case "log", "warning", "drift":
		prefix := e.Type
		if e.Type == "drift" {
			prefix = "warning"
		}
		if e.Target != "" {
			prefix += " [" + e.Target + "]"
		}
		fmt.Fprintf(t.human, "%s: %s  %s\n", prefix, e.Message, e.Pos)
	case "problem":
		if e.Problem != nil {
			fmt.Fprintf(t.human, "problem (%s): %s  %s\n", e.Problem.Level, e.Problem.Text(), e.Pos)
		}
	case "recap":
		t.recap(e)
	}
}

func msDuration(ms *float64) time.Duration {
	if ms == nil {
		return 0
	}
	// The events carry microseconds: round back to them exactly.
	return time.Duration(math.Round(*ms*1000)) * time.Microsecond
}

func (t *TextReport) effect(start, e Event) {
	show := start.Write || e.Status == StatusFailed || e.Status == StatusUnreachable || t.opts.Verbose
	if !show {
		return
	}
	changed := e.Changed != nil && *e.Changed
	label := string(e.Status)
	if e.Simulated {
		label = "would change"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s [%s] %s %s", label+":", e.Target, e.Kind, oneLine(start.Desc))
	if e.Note != "" {
		fmt.Fprintf(&b, " (%s)", e.Note)
	}
	fmt.Fprintf(&b, "  %s %s\n", e.Pos, fmtDuration(msDuration(e.DurationMS)))
	if e.Error != "" {
		for _, line := range strings.Split(strings.TrimRight(e.Error, "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	if e.Diff != "" && changed && (t.dry || t.opts.ShowDiff) {
		for _, line := range strings.Split(strings.TrimRight(e.Diff, "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	io.WriteString(t.human, b.String())
}

func (t *TextReport) recap(e Event) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nRECAP (%s)\n", fmtDuration(msDuration(e.DurationMS)))
	names := e.Order
	if len(names) != len(e.Targets) {
		// An event stream from before target_order: sorted.
		names = names[:0:0]
		for n := range e.Targets {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	width := 8
	for _, n := range names {
		if len(n) > width {
			width = len(n)
		}
	}
	for _, n := range names {
		c := e.Targets[n]
		fmt.Fprintf(&b, "  %-*s  ok=%-4d changed=%-4d failed=%-4d unreachable=%d\n", width, n, c.OK, c.Changed, c.Failed, c.Unreachable)
	}
	if len(names) == 0 {
		b.WriteString("  (no effects)\n")
	}
	if len(e.Problems) > 0 {
		invalid := 0
		for _, p := range e.Problems {
			if p.Level == "invalid" {
				invalid++
			}
		}
		fmt.Fprintf(&b, "PROBLEMS in the cluster state: %d invalid (skipped: never pushed or written), %d warning(s); `mno state` shows them\n",
			invalid, len(e.Problems)-invalid)
		for _, p := range e.Problems {
			fmt.Fprintf(&b, "  %-8s %s\n", p.Level, p.Text())
		}
	}
	io.WriteString(t.human, b.String())
}

// output builds the events of a run, redacted, and hands each to every
// observer in turn.
type output struct {
	mu        sync.Mutex
	observers []Observer
	redactor  *secret.Redactor
	now       func() time.Time
}

func (o *output) r(s string) string { return o.redactor.Redact(s) }

func (o *output) emit(e Event) {
	e.V = EventVersion
	e.Time = o.now().UTC().Format(time.RFC3339Nano)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ob := range o.observers {
		ob.Event(e)
	}
}

func (o *output) runStart(runID, playbook string, dry bool, params map[string]string, src Sources) {
	red := make(map[string]string, len(params))
	for k, v := range params {
		red[k] = o.r(v)
	}
	o.emit(Event{Type: "run_start", RunID: runID, Playbook: playbook, DryRun: dry, Params: red,
		Workspace: src.Workspace, FromDisk: src.FromDisk, Resolved: src.Note, SourceSHA256: src.SHA256})
}

func (o *output) effectStart(id int, op Op) {
	o.emit(Event{Type: "effect_start", ID: id, Target: op.Target, Kind: op.Kind,
		Desc: o.r(op.Desc), Pos: op.Pos, Write: op.Write})
}

func (o *output) effectEnd(id int, op Op, out Outcome, st Status, err error, d time.Duration) {
	ms := float64(d.Microseconds()) / 1000
	changed := out.Changed
	e := Event{Type: "effect_end", ID: id, Target: op.Target, Kind: op.Kind, Pos: op.Pos,
		Status: st, Changed: &changed, Simulated: out.Simulated, Note: o.r(out.Note), Pre: out.Pre, DurationMS: &ms}
	if out.Changed {
		e.Diff = o.r(out.Diff)
	}
	if err != nil {
		e.Error = o.r(err.Error())
	}
	o.emit(e)
}

func (o *output) print(pos, msg string) {
	o.emit(Event{Type: "print", Pos: pos, Message: o.r(msg)})
}

func (o *output) message(kind, pos, target, msg string) {
	o.emit(Event{Type: kind, Pos: pos, Target: target, Message: o.r(msg)})
}

func (o *output) problem(pos string, p Problem) {
	p.Message = o.r(p.Message)
	// Event.Message (the outer field) carries the problem's message in JSON.
	o.emit(Event{Type: "problem", Pos: pos, Message: p.Message, Problem: &p})
}

func (o *output) recap(names []string, counts map[string]Counts, problems []Problem, exit int, runErr string, elapsed time.Duration) {
	ex := exit
	red := make([]Problem, len(problems))
	for i, p := range problems {
		p.Message = o.r(p.Message)
		red[i] = p
	}
	e := Event{Type: "recap", Targets: counts, Order: names, Exit: &ex, Error: o.r(runErr), Problems: red}
	ms := float64(elapsed.Microseconds()) / 1000
	e.DurationMS = &ms
	o.emit(e)
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}
