// Package history keeps a record of every run that changed something, or
// failed, in the cluster: one ConfigMap mno-history/mno-run-<runid> per run
// (the records' own namespace; see Namespace) holding the run's events
// (gzipped JSON), labelled by result and by the nodes it affected, with a
// Kubernetes Event on each affected Node and ConfigMap naming the run. `mno history` lists the records and `mno show`
// prints one as the run printed it.
//
// A record is what the journal emitted (already redacted, redacted again
// with the run's final redactor), so it holds no secret the report did not.
package history

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"sync"
	"time"

	"github.com/mno-sh/mno/engine/journal"
)

// RecordVersion is the version of the record's JSON.
const RecordVersion = 1

// Results of a run, as the mno.sh/result label says them.
const (
	ResultOK     = "ok"
	ResultFailed = "failed"
	ResultDrift  = "drift"
)

// Record is one run as stored in the cluster.
type Record struct {
	V            int               `json:"v"`
	RunID        string            `json:"run_id"`
	Playbook     string            `json:"playbook"`
	SourceSHA256 string            `json:"source_sha256,omitempty"`
	Params       map[string]string `json:"params,omitempty"`
	// By is who ran it, user@host.
	By     string    `json:"by"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	DryRun bool      `json:"dry_run,omitempty"`
	Exit   int       `json:"exit"`
	Error  string    `json:"error,omitempty"`
	Result string    `json:"result"`
	// Targets is each target's result: ok, changed, drift, failed, unreachable.
	Targets map[string]string `json:"targets"`
	// Drift lists the files found changed by someone else, by target.
	Drift map[string][]string `json:"drift,omitempty"`
	// Text is how the run rendered its report (for `mno show`).
	Text journal.TextOptions `json:"text"`
	// Events are the run's journal events, effects with their diffs.
	Events []journal.Event `json:"events"`
	// Cut says what was left out to keep the record under MaxBytes.
	Cut string `json:"cut,omitempty"`
}

// Changed reports whether the run changed anything.
func (r *Record) Changed() bool {
	for _, e := range r.Events {
		if e.Type == "effect_end" && e.Changed != nil && *e.Changed && !e.Simulated {
			return true
		}
	}
	return false
}

// Affected returns the targets (nodes, "cluster", "local") whose result is
// not plain ok, sorted.
func (r *Record) Affected() []string {
	var out []string
	for t, res := range r.Targets {
		if res != ResultOK {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// Recorder is a journal observer that keeps a run's events for its record.
type Recorder struct {
	mu     sync.Mutex
	events []journal.Event
	start  time.Time
}

// Event keeps e.
func (r *Recorder) Event(e journal.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		r.start = time.Now()
	}
	r.events = append(r.events, e)
}

// Meta is what the record says beyond the events.
type Meta struct {
	Exit   int
	Error  string
	Text   journal.TextOptions
	Redact func(string) string // the run's final redactor; nil: none
	End    time.Time
}

// Record builds the run's record from the events kept; nil when the run
// never started (no run_start: a usage error).
func (r *Recorder) Record(m Meta) *Record {
	r.mu.Lock()
	events := append([]journal.Event(nil), r.events...)
	start := r.start
	r.mu.Unlock()
	if len(events) == 0 || events[0].Type != "run_start" {
		return nil
	}
	if m.Redact != nil {
		for i := range events {
			events[i] = redactEvent(events[i], m.Redact)
		}
	}
	rs := events[0]
	if t, err := time.Parse(time.RFC3339Nano, rs.Time); err == nil {
		start = t
	}
	end := m.End
	if end.IsZero() {
		end = time.Now()
	}
	rec := &Record{V: RecordVersion, RunID: rs.RunID, Playbook: rs.Playbook, SourceSHA256: rs.SourceSHA256,
		Params: rs.Params, By: whoAmI(), Start: start.UTC(), End: end.UTC(), DryRun: rs.DryRun,
		Exit: m.Exit, Error: m.Error, Text: m.Text, Events: events, Targets: map[string]string{}}
	if m.Redact != nil {
		rec.Error = m.Redact(rec.Error)
	}
	counts := map[string]*journal.Counts{}
	for _, e := range events {
		switch e.Type {
		case "effect_end":
			c := counts[e.Target]
			if c == nil {
				c = &journal.Counts{}
				counts[e.Target] = c
			}
			switch e.Status {
			case journal.StatusFailed:
				c.Failed++
			case journal.StatusUnreachable:
				c.Unreachable++
			case journal.StatusChanged:
				c.Changed++
			}
		case "drift":
			if rec.Drift == nil {
				rec.Drift = map[string][]string{}
			}
			rec.Drift[e.Target] = append(rec.Drift[e.Target], e.File)
		case "recap":
			for t := range e.Targets {
				if counts[t] == nil {
					counts[t] = &journal.Counts{}
				}
			}
		}
	}
	for t, c := range counts {
		res := ResultOK
		switch {
		case c.Unreachable > 0:
			res = "unreachable"
		case c.Failed > 0:
			res = ResultFailed
		case rec.Drift[t] != nil:
			res = ResultDrift
		case c.Changed > 0:
			res = "changed"
		}
		rec.Targets[t] = res
	}
	for t := range rec.Drift {
		if _, ok := rec.Targets[t]; !ok {
			rec.Targets[t] = ResultDrift
		}
	}
	switch {
	case m.Exit != 0:
		rec.Result = ResultFailed
	case len(rec.Drift) > 0:
		rec.Result = ResultDrift
	default:
		rec.Result = ResultOK
	}
	return rec
}

// Wanted reports whether the run is recorded: a real run (not dry) that
// changed something, found drift or failed.
func (r *Record) Wanted() bool {
	return r != nil && !r.DryRun && (r.Exit != 0 || r.Changed() || len(r.Drift) > 0)
}

func redactEvent(e journal.Event, red func(string) string) journal.Event {
	e.Desc, e.Diff, e.Note, e.Error, e.Message, e.File = red(e.Desc), red(e.Diff), red(e.Note), red(e.Error), red(e.Message), red(e.File)
	if e.Params != nil {
		p := make(map[string]string, len(e.Params))
		for k, v := range e.Params {
			p[k] = red(v)
		}
		e.Params = p
	}
	if e.Problem != nil {
		p := *e.Problem
		p.Message = red(p.Message)
		e.Problem = &p
	}
	if e.Problems != nil {
		ps := append([]journal.Problem(nil), e.Problems...)
		for i := range ps {
			ps[i].Message = red(ps[i].Message)
		}
		e.Problems = ps
	}
	return e
}

func whoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	} else if v := os.Getenv("USER"); v != "" {
		name = v
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

// MaxBytes bounds a record's gzipped JSON: a ConfigMap holds at most 1 MiB
// with its metadata.
const MaxBytes = 900 << 10

// CutMarker starts the text that replaces what a record left out.
const CutMarker = "[cut by mno:"

// Encode returns the record as gzipped JSON of at most max bytes, cutting
// the largest diffs (then, if that is not enough, the events after the run's
// start) with an explicit marker; rec.Cut says what was cut.
func Encode(rec *Record, max int) ([]byte, error) {
	b, err := gz(rec)
	if err != nil || len(b) <= max {
		return b, err
	}
	cut := *rec
	cut.Events = append([]journal.Event(nil), rec.Events...)
	var diffs []int
	for i, e := range cut.Events {
		if e.Diff != "" {
			diffs = append(diffs, i)
		}
	}
	sort.Slice(diffs, func(a, b int) bool { return len(cut.Events[diffs[a]].Diff) > len(cut.Events[diffs[b]].Diff) })
	for limit := 64 << 10; limit >= 256; limit /= 4 {
		n := 0
		for _, i := range diffs {
			d := rec.Events[i].Diff
			if len(d) > limit {
				cut.Events[i].Diff = d[:limit] + fmt.Sprintf("\n… %s %d bytes of this diff not recorded: the record is limited to %d KiB]\n", CutMarker, len(d)-limit, max>>10)
				n++
			}
		}
		cut.Cut = fmt.Sprintf("%d diff(s) cut to %d bytes each to stay under %d KiB", n, limit, max>>10)
		if b, err = gz(&cut); err != nil || len(b) <= max {
			*rec = cut
			return b, err
		}
	}
	// Still too large (very many effects): keep the start and the end.
	for keep := len(cut.Events) / 2; keep > 0; keep /= 2 {
		evs := append([]journal.Event(nil), cut.Events[:keep]...)
		dropped := len(cut.Events) - keep - 1
		evs = append(evs, journal.Event{V: journal.EventVersion, Type: "warning",
			Message: fmt.Sprintf("%s %d event(s) not recorded: the record is limited to %d KiB]", CutMarker, dropped, max>>10)})
		if last := cut.Events[len(cut.Events)-1]; last.Type == "recap" {
			evs = append(evs, last)
		}
		c2 := cut
		c2.Events = evs
		c2.Cut = cut.Cut + fmt.Sprintf("; %d event(s) dropped", dropped)
		if b, err = gz(&c2); err != nil || len(b) <= max {
			*rec = c2
			return b, err
		}
	}
	return nil, fmt.Errorf("run record over %d KiB even without its events", max>>10)
}

func gz(rec *Record) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode reads a record written by Encode.
func Decode(b []byte) (*Record, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("run record: %v", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("run record: %v", err)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("run record: %v", err)
	}
	if rec.V != RecordVersion {
		return nil, fmt.Errorf("run record version %d, this mno reads %d", rec.V, RecordVersion)
	}
	return &rec, nil
}

// Render writes the record's report as the run printed it (the text
// report re-rendered from the recorded events); diff adds the diffs of
// real changes. Only the events of target node are shown when node is set
// (the header, messages without target and the recap stay).
func Render(w io.Writer, rec *Record, diff bool, node string) {
	opts := rec.Text
	opts.ShowDiff = opts.ShowDiff || diff
	tr := journal.NewTextReport(w, w, opts)
	for _, e := range rec.Events {
		if node != "" && e.Target != "" && e.Target != node {
			continue
		}
		if node != "" && e.Type == "recap" {
			e.Targets = map[string]journal.Counts{node: e.Targets[node]}
			e.Order = []string{node}
		}
		tr.Event(e)
	}
	if rec.Cut != "" {
		fmt.Fprintf(w, "%s %s]\n", CutMarker, rec.Cut)
	}
}
