package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mno-sh/mno/engine/secret"
)

func TestGate(t *testing.T) {
	tests := []struct {
		name        string
		dry, write  bool
		check       *Change
		wantApplied bool
		wantSim     bool
		wantStatus  Status
	}{
		{name: "real write without check applies", write: true, wantApplied: true, wantStatus: StatusChanged},
		{name: "real write, check says unchanged, no apply", write: true, check: &Change{}, wantStatus: StatusOK},
		{name: "real write, check says changed, applies", write: true, check: &Change{Changed: true}, wantApplied: true, wantStatus: StatusChanged},
		{name: "dry write is simulated", dry: true, write: true, check: &Change{Changed: true, Diff: "d"}, wantSim: true, wantStatus: StatusChanged},
		{name: "dry write unchanged is not simulated", dry: true, write: true, check: &Change{}, wantStatus: StatusOK},
		{name: "dry read executes", dry: true, wantApplied: true, wantStatus: StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var events bytes.Buffer
			j := New(Options{DryRun: tc.dry, JSON: &events})
			applied := false
			op := Op{Target: "h", Kind: "k", Write: tc.write,
				Apply: func(context.Context) (Change, error) {
					applied = true
					return Change{Changed: tc.write}, nil
				}}
			if tc.check != nil {
				c := *tc.check
				op.Check = func(context.Context) (Change, error) { return c, nil }
			}
			out, err := j.Do(context.Background(), op)
			if err != nil {
				t.Fatal(err)
			}
			if applied != tc.wantApplied || out.Applied != tc.wantApplied {
				t.Errorf("applied = %v (outcome %v), want %v", applied, out.Applied, tc.wantApplied)
			}
			if out.Simulated != tc.wantSim {
				t.Errorf("simulated = %v, want %v", out.Simulated, tc.wantSim)
			}
			if !strings.Contains(events.String(), `"status":"`+string(tc.wantStatus)+`"`) {
				t.Errorf("events lack status %s:\n%s", tc.wantStatus, events.String())
			}
		})
	}
}

func TestRecapCounts(t *testing.T) {
	var human bytes.Buffer
	j := New(Options{Human: &human})
	ctx := context.Background()
	ok := func(context.Context) (Change, error) { return Change{}, nil }
	changed := func(context.Context) (Change, error) { return Change{Changed: true}, nil }
	boom := func(context.Context) (Change, error) { return Change{}, errors.New("boom") }
	down := func(context.Context) (Change, error) { return Change{}, Unreachable(errors.New("no route")) }
	j.Do(ctx, Op{Target: "a", Apply: ok})
	j.Do(ctx, Op{Target: "a", Write: true, Apply: changed})
	j.Do(ctx, Op{Target: "b", Write: true, Apply: boom})
	j.Do(ctx, Op{Target: "c", Apply: down})
	names, counts := j.Recap()
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("targets %v", names)
	}
	want := map[string]Counts{"a": {OK: 2, Changed: 1}, "b": {Failed: 1}, "c": {Unreachable: 1}}
	for k, w := range want {
		if counts[k] != w {
			t.Errorf("%s: %+v, want %+v", k, counts[k], w)
		}
	}
	if !j.Failed() {
		t.Error("Failed() = false with a failed target")
	}
	j.Finish(2, "", 0)
	if !strings.Contains(human.String(), "c         ok=0    changed=0    failed=0    unreachable=1") {
		t.Errorf("recap:\n%s", human.String())
	}
}

func TestRedactsEverywhere(t *testing.T) {
	red := secret.NewRedactor()
	red.Add("s3cr3t-value")
	var human, events bytes.Buffer
	j := New(Options{Human: &human, JSON: &events, Redactor: red, DryRun: true})
	j.Start("id", "p.star", map[string]string{"token": "s3cr3t-value"})
	j.Do(context.Background(), Op{Target: "h", Kind: "put", Desc: "/etc/x with s3cr3t-value", Write: true,
		Check: func(context.Context) (Change, error) {
			return Change{Changed: true, Diff: "+token: s3cr3t-value\n", Note: "s3cr3t-value"}, nil
		}})
	j.Do(context.Background(), Op{Target: "h", Kind: "run", Desc: "x",
		Apply: func(context.Context) (Change, error) { return Change{}, errors.New("failed: s3cr3t-value") }})
	j.Print("p:1:1", "print s3cr3t-value")
	j.Warn("p:1:1", "h", "warn s3cr3t-value")
	j.Finish(2, "error s3cr3t-value", 0)
	for name, out := range map[string]string{"human": human.String(), "events": events.String()} {
		if strings.Contains(out, "s3cr3t-value") {
			t.Errorf("%s output leaks the secret:\n%s", name, out)
		}
		if !strings.Contains(out, "<redacted>") {
			t.Errorf("%s output shows no placeholder:\n%s", name, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(events.String()), "\n") {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.V != EventVersion {
			t.Errorf("bad event line %q: %v", line, err)
		}
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"equal", "a\n", "a\n", ""},
		{"add to empty", "", "x\ny\n", "--- f\n+++ f\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"change middle", "a\nb\nc\n", "a\nB\nc\n", "--- f\n+++ f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"remove all", "a\n", "", "--- f\n+++ f\n@@ -1 +0,0 @@\n-a\n"},
		{"no newline at end", "a", "b", "--- f\n+++ f\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n"},
		{"binary", "a\x00", "b\x00", "--- f\n+++ f\nbinary or large content differs (2 bytes → 2 bytes)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Diff("f", tc.old, tc.new); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestDiffHunksAreSeparated(t *testing.T) {
	var old, new []string
	for i := 0; i < 30; i++ {
		old = append(old, string(rune('a'+i%26)))
	}
	new = append(new, old...)
	new[2] = "X"
	new[25] = "Y"
	d := Diff("f", strings.Join(old, "\n")+"\n", strings.Join(new, "\n")+"\n")
	if n := strings.Count(d, "@@ -"); n != 2 {
		t.Fatalf("want 2 hunks, got %d:\n%s", n, d)
	}
	if !strings.Contains(d, "@@ -1,6 +1,6 @@") || !strings.Contains(d, "@@ -23,7 +23,7 @@") {
		t.Errorf("hunk headers:\n%s", d)
	}
}

// TestProblems: each problem of the cluster state is reported once per run
// (the state is read more than once), as a "problem" event with its fields
// and in the recap, human and JSON.
func TestProblems(t *testing.T) {
	var human, events bytes.Buffer
	j := New(Options{Human: &human, JSON: &events})
	if _, read := j.StateProblems(); read {
		t.Error("state read before any Problems call")
	}
	p := Problem{Level: "invalid", ConfigMap: "service-registry", Key: "services.json", Entry: `"evil"`, Field: "port", Message: "-1 is not a TCP port (1-65535): service skipped"}
	w := Problem{Level: "warning", ConfigMap: "cluster-info", Key: "control-plane-ip", Message: "missing"}
	j.Problems("sync.star:3:4", []Problem{p, w})
	j.Problems("sync.star:9:4", []Problem{p})
	j.Finish(0, "", 0)
	got, read := j.StateProblems()
	if !read || len(got) != 2 {
		t.Fatalf("problems %v (read %v), want 2", got, read)
	}
	if n := strings.Count(human.String(), "problem (invalid): service-registry services.json \"evil\": port: -1 is not a TCP port"); n != 1 {
		t.Errorf("reported %d times:\n%s", n, human.String())
	}
	if !strings.Contains(human.String(), "PROBLEMS in the cluster state: 1 invalid (skipped: never pushed or written), 1 warning(s)") ||
		!strings.Contains(human.String(), "  warning  cluster-info control-plane-ip: missing\n") {
		t.Errorf("recap:\n%s", human.String())
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(events.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, e["type"].(string))
		if e["type"] == "problem" && e["level"] == "invalid" {
			if e["configmap"] != "service-registry" || e["key"] != "services.json" || e["entry"] != `"evil"` || e["field"] != "port" ||
				e["message"] != p.Message || e["pos"] != "sync.star:3:4" {
				t.Errorf("problem event %s", line)
			}
		}
		if e["type"] == "recap" {
			if ps, _ := e["problems"].([]any); len(ps) != 2 {
				t.Errorf("recap problems: %s", line)
			}
		}
	}
	if strings.Join(kinds, " ") != "problem problem recap" {
		t.Errorf("events %v", kinds)
	}
}
