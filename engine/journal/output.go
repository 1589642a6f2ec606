package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
	Type       string            `json:"type"` // run_start effect_start effect_end print log warning problem recap
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
	Error      string            `json:"error,omitempty"`
	DurationMS *float64          `json:"duration_ms,omitempty"`
	Message    string            `json:"message,omitempty"`
	Targets    map[string]Counts `json:"targets,omitempty"`
	Exit       *int              `json:"exit,omitempty"`
	// run_start: where the files came from.
	Workspace string   `json:"workspace,omitempty"`
	FromDisk  []string `json:"from_disk,omitempty"`
	Resolved  string   `json:"resolved,omitempty"`
	// problem: one finding about the cluster's state (its fields inline);
	// recap: all of them.
	*Problem
	Problems []Problem `json:"problems,omitempty"`
}

type output struct {
	mu       sync.Mutex
	human    io.Writer
	json     io.Writer
	printTo  io.Writer
	redactor *secret.Redactor
	now      func() time.Time
}

func (o *output) r(s string) string { return o.redactor.Redact(s) }

func (o *output) emit(e Event) {
	if o.json == nil {
		return
	}
	e.V = EventVersion
	e.Time = o.now().UTC().Format(time.RFC3339Nano)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.json.Write(buf.Bytes())
}

func (o *output) text(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.human, format, args...)
}

func (o *output) runStart(runID, playbook string, dry bool, params map[string]string, src Sources) {
	red := make(map[string]string, len(params))
	for k, v := range params {
		red[k] = o.r(v)
	}
	o.emit(Event{Type: "run_start", RunID: runID, Playbook: playbook, DryRun: dry, Params: red,
		Workspace: src.Workspace, FromDisk: src.FromDisk, Resolved: src.Note})
	mode := ""
	if dry {
		mode = " (dry run: nothing will be changed)"
	}
	o.text("RUN %s [%s]%s\n", playbook, runID, mode)
	if src.Note != "" {
		o.text("note: %s\n", src.Note)
	}
	if len(src.FromDisk) > 0 {
		where := ""
		if src.Workspace != "" {
			where = " (workspace " + src.Workspace + ")"
		}
		o.text("from disk%s: %s; the rest from the binary\n", where, strings.Join(src.FromDisk, ", "))
	}
}

func (o *output) effectStart(id int, op Op) {
	o.emit(Event{Type: "effect_start", ID: id, Target: op.Target, Kind: op.Kind,
		Desc: o.r(op.Desc), Pos: op.Pos, Write: op.Write})
}

func (o *output) effectEnd(id int, op Op, out Outcome, st Status, err error, d time.Duration, show, diff bool) {
	ms := float64(d.Microseconds()) / 1000
	changed := out.Changed
	e := Event{Type: "effect_end", ID: id, Target: op.Target, Kind: op.Kind, Pos: op.Pos,
		Status: st, Changed: &changed, Simulated: out.Simulated, Note: o.r(out.Note), DurationMS: &ms}
	if out.Changed {
		e.Diff = o.r(out.Diff)
	}
	if err != nil {
		e.Error = o.r(err.Error())
	}
	o.emit(e)
	if !show {
		return
	}
	label := string(st)
	if out.Simulated {
		label = "would change"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s [%s] %s %s", label+":", op.Target, op.Kind, o.r(oneLine(op.Desc)))
	if out.Note != "" {
		fmt.Fprintf(&b, " (%s)", o.r(out.Note))
	}
	fmt.Fprintf(&b, "  %s %s\n", op.Pos, fmtDuration(d))
	if err != nil {
		for _, line := range strings.Split(strings.TrimRight(o.r(err.Error()), "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	if diff {
		for _, line := range strings.Split(strings.TrimRight(o.r(out.Diff), "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	o.text("%s", b.String())
}

func (o *output) print(pos, msg string) {
	msg = o.r(msg)
	if o.json != nil {
		o.emit(Event{Type: "print", Pos: pos, Message: msg})
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintln(o.printTo, msg)
}

func (o *output) message(kind, pos, target, msg string) {
	msg = o.r(msg)
	o.emit(Event{Type: kind, Pos: pos, Target: target, Message: msg})
	prefix := kind
	if target != "" {
		prefix += " [" + target + "]"
	}
	o.text("%s: %s  %s\n", prefix, msg, pos)
}

func (o *output) problem(pos string, p Problem) {
	p.Message = o.r(p.Message)
	// Event.Message (the outer field) carries the problem's message in JSON.
	o.emit(Event{Type: "problem", Pos: pos, Message: p.Message, Problem: &p})
	o.text("problem (%s): %s  %s\n", p.Level, p.Text(), pos)
}

func (o *output) recap(names []string, counts map[string]Counts, problems []Problem, exit int, runErr string, elapsed time.Duration) {
	ex := exit
	red := make([]Problem, len(problems))
	for i, p := range problems {
		p.Message = o.r(p.Message)
		red[i] = p
	}
	e := Event{Type: "recap", Targets: counts, Exit: &ex, Error: o.r(runErr), Problems: red}
	ms := float64(elapsed.Microseconds()) / 1000
	e.DurationMS = &ms
	o.emit(e)
	var b strings.Builder
	fmt.Fprintf(&b, "\nRECAP (%s)\n", fmtDuration(elapsed))
	width := 8
	for _, n := range names {
		if len(n) > width {
			width = len(n)
		}
	}
	for _, n := range names {
		c := counts[n]
		fmt.Fprintf(&b, "  %-*s  ok=%-4d changed=%-4d failed=%-4d unreachable=%d\n", width, n, c.OK, c.Changed, c.Failed, c.Unreachable)
	}
	if len(names) == 0 {
		b.WriteString("  (no effects)\n")
	}
	if len(problems) > 0 {
		invalid := 0
		for _, p := range red {
			if p.Level == "invalid" {
				invalid++
			}
		}
		fmt.Fprintf(&b, "PROBLEMS in the cluster state: %d invalid (skipped: never pushed or written), %d warning(s); `mno state` shows them\n",
			invalid, len(problems)-invalid)
		for _, p := range red {
			fmt.Fprintf(&b, "  %-8s %s\n", p.Level, p.Text())
		}
	}
	o.text("%s", b.String())
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
