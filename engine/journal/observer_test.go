package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mno-sh/mno/engine/secret"
)

// record runs a small journal: a run with a secret in a parameter, a
// changed write with a diff, a read, a failed write, a print, a warning and
// a recap; it returns what the observer, the JSONL stream and the text
// report got.
func record(t *testing.T, dry bool, opts TextOptions) (obs []Event, jsonl, text, printed string) {
	t.Helper()
	red := secret.NewRedactor()
	red.Add("hunter2")
	var js, human, print bytes.Buffer
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j := New(Options{DryRun: dry, ShowDiff: opts.ShowDiff, Verbose: opts.Verbose, Human: &human, JSON: &js, Print: &print, Redactor: red,
		Now:       func() time.Time { return clock },
		Observers: []Observer{ObserverFunc(func(e Event) { obs = append(obs, e) })}})
	j.SetSources("/ws", []string{"roles/x.star"}, "")
	j.SetSourceHash("abc123")
	j.Start("run-1", "sync", map[string]string{"token": "hunter2", "only": "vps-1"})
	ctx := context.Background()
	j.Do(ctx, Op{Target: "vps-1", Kind: "put", Desc: "/etc/x", Pos: "a.star:1:1", Write: true,
		Check: func(context.Context) (Change, error) { return Change{Changed: true, Diff: "-old\n+new hunter2\n"}, nil },
		Apply: func(context.Context) (Change, error) { return Change{Changed: true, Diff: "-old\n+new hunter2\n"}, nil }})
	j.Do(ctx, Op{Target: "vps-1", Kind: "read", Desc: "/etc/y", Pos: "a.star:2:1",
		Apply: func(context.Context) (Change, error) { return Change{}, nil }})
	j.Do(ctx, Op{Target: "vps-2", Kind: "run", Desc: "echo hunter2", Pos: "a.star:3:1", Write: true,
		Apply: func(context.Context) (Change, error) { return Change{}, errors.New("exit 1: hunter2 refused") }})
	j.Print("a.star:4:1", "hello")
	j.Warn("a.star:5:1", "vps-2", "careful")
	j.Drift("a.star:6:1", "vps-1", "/etc/x", "/etc/x was changed on vps-1")
	j.Touch("laptop-1")
	j.Finish(2, "", 1500*time.Millisecond)
	return obs, js.String(), human.String(), print.String()
}

// TestObserverSeesEveryEvent: an observer gets the same events, in the same
// order and with the same content, as the JSONL stream, secrets already
// redacted.
func TestObserverSeesEveryEvent(t *testing.T) {
	obs, jsonl, _, _ := record(t, false, TextOptions{})
	lines := strings.Split(strings.TrimRight(jsonl, "\n"), "\n")
	if len(obs) != len(lines) {
		t.Fatalf("observer got %d events, the stream %d lines:\n%s", len(obs), len(lines), jsonl)
	}
	var types []string
	for i, e := range obs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var a, b2 any
		json.Unmarshal(b, &a)
		json.Unmarshal([]byte(lines[i]), &b2)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b2)
		if string(ja) != string(jb) {
			t.Errorf("event %d differs:\nobserver %s\nstream   %s", i, ja, jb)
		}
		types = append(types, e.Type)
	}
	want := "run_start effect_start effect_end effect_start effect_end effect_start effect_end print warning drift recap"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("event types:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(jsonl, "hunter2") {
		t.Errorf("a secret reached the events:\n%s", jsonl)
	}
	if obs[0].SourceSHA256 != "abc123" || obs[0].Params["token"] != secret.Placeholder {
		t.Errorf("run_start: %+v", obs[0])
	}
	rc := obs[len(obs)-1]
	if strings.Join(rc.Order, ",") != "vps-1,vps-2,laptop-1" {
		t.Errorf("recap target_order = %v, want first-seen order", rc.Order)
	}
	if d := obs[9]; d.Target != "vps-1" || d.File != "/etc/x" {
		t.Errorf("drift event: %+v", d)
	}
}

// TestObserverTextReportReplays: the text report rendered again from the
// recorded events (as `mno show` does) is byte for byte the report the run
// printed, with and without dry-run, diffs and verbose.
func TestObserverTextReportReplays(t *testing.T) {
	for _, tc := range []struct {
		dry  bool
		opts TextOptions
	}{{false, TextOptions{}}, {true, TextOptions{}}, {false, TextOptions{ShowDiff: true, Verbose: true}}} {
		obs, _, text, printed := record(t, tc.dry, tc.opts)
		var again, print bytes.Buffer
		r := NewTextReport(&again, &print, tc.opts)
		for _, e := range obs {
			r.Event(e)
		}
		if again.String() != text {
			t.Errorf("dry=%v %+v: replayed report differs:\n--- run\n%s\n--- replay\n%s", tc.dry, tc.opts, text, again.String())
		}
		if printed != "" || print.String() != "hello\n" {
			t.Errorf("prints: run wrote %q to stdout with an event stream, replay %q", printed, print.String())
		}
		failLine := "failed:      [vps-2] run echo <redacted>"
		if tc.dry {
			failLine = "would change: [vps-2] run echo <redacted>" // no Check: not applied in dry-run
		}
		for _, want := range []string{"RUN sync [run-1]", "changed:     [vps-1] put /etc/x", failLine,
			"warning [vps-1]: /etc/x was changed on vps-1  a.star:6:1", "RECAP (1.5s)", "laptop-1"} {
			if tc.dry {
				want = strings.Replace(want, "changed:     [vps-1]", "would change: [vps-1]", 1)
			}
			if !strings.Contains(text, want) {
				t.Errorf("dry=%v: report lacks %q:\n%s", tc.dry, want, text)
			}
		}
		diffShown := strings.Contains(text, "+new <redacted>")
		if diffShown != (tc.dry || tc.opts.ShowDiff) {
			t.Errorf("dry=%v %+v: diff shown = %v:\n%s", tc.dry, tc.opts, diffShown, text)
		}
		if strings.Contains(text, "/etc/y") != tc.opts.Verbose {
			t.Errorf("%+v: the read shown = %v", tc.opts, !tc.opts.Verbose)
		}
	}
}

// TestObserverWithoutStream: observers get every event, prints included,
// when there is no JSONL stream; prints still go to stdout as text.
func TestObserverWithoutStream(t *testing.T) {
	var got []string
	var print bytes.Buffer
	j := New(Options{Print: &print, Observers: []Observer{ObserverFunc(func(e Event) { got = append(got, e.Type+":"+e.Message) })}})
	j.Start("r", "p", nil)
	j.Print("x:1:1", "hi")
	j.Finish(0, "", 0)
	if strings.Join(got, " ") != "run_start: print:hi recap:" {
		t.Errorf("observer got %v", got)
	}
	if print.String() != "hi\n" {
		t.Errorf("stdout %q", print.String())
	}
}

// TestGuardRefuses: a write the guard refuses is not applied and fails; the
// guard is asked only about real writes that would change, with the
// precondition the check computed and the description redacted.
func TestGuardRefuses(t *testing.T) {
	red := secret.NewRedactor()
	red.Add("hunter2")
	var asked []string
	j := New(Options{Redactor: red, Guard: func(op Op, ch Change) error {
		asked = append(asked, op.Desc+" "+ch.Pre)
		if op.Target == "no" {
			return errors.New("not in the saved plan: refused")
		}
		return nil
	}})
	ctx := context.Background()
	applied := 0
	mk := func(target string, changed bool) Op {
		return Op{Target: target, Kind: "put", Desc: "/f hunter2", Write: true,
			Check: func(context.Context) (Change, error) { return Change{Changed: changed, Pre: "sha256:1"}, nil },
			Apply: func(context.Context) (Change, error) { applied++; return Change{Changed: true}, nil }}
	}
	if _, err := j.Do(ctx, mk("yes", true)); err != nil || applied != 1 {
		t.Errorf("allowed write: %v, applied %d", err, applied)
	}
	if _, err := j.Do(ctx, mk("no", true)); err == nil || applied != 1 || !j.TargetFailed("no") {
		t.Errorf("refused write: %v, applied %d", err, applied)
	}
	j.Do(ctx, mk("no", false)) // unchanged: not asked
	if strings.Join(asked, ",") != "/f <redacted> sha256:1,/f <redacted> sha256:1" {
		t.Errorf("guard asked %v", asked)
	}
}
