package history

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/mno-sh/mno/engine/journal"
)

// TestNodeLabelHostile: every node name, hostile ones included, becomes a
// valid label key under node.mno.sh/, distinct names distinct keys; a
// name that is a valid label name is kept as it is.
func TestNodeLabelHostile(t *testing.T) {
	seen := map[string]string{}
	for _, n := range []string{"vps-1", "VPS-1", "a.b_c", "", "-", "ünï", "a/b", "a b", "$(reboot)", "x\nnode.mno.sh/y",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 64) + "b", "-lead", "trail-"} {
		k := NodeLabel(n)
		name, ok := strings.CutPrefix(k, NodeLabelPrefix)
		if !ok || !labelName(name) {
			t.Errorf("NodeLabel(%q) = %q: not a label key", n, k)
		}
		if labelName(n) && name != n {
			t.Errorf("NodeLabel(%q) = %q, want the name kept", n, k)
		}
		if prev, dup := seen[k]; dup {
			t.Errorf("NodeLabel(%q) = NodeLabel(%q) = %q", n, prev, k)
		}
		seen[k] = n
	}
}

// TestEncodeCut: a record over the limit is cut (largest diffs first, with
// the marker) to fit, and decodes; one under it is left whole.
func TestEncodeCut(t *testing.T) {
	big := make([]byte, 600<<10)
	rand.Read(big)
	tr := true
	rec := &Record{V: RecordVersion, RunID: "r", Events: []journal.Event{
		{Type: "run_start", RunID: "r"},
		{Type: "effect_start", ID: 1, Target: "h", Kind: "put", Desc: "/a", Write: true},
		{Type: "effect_end", ID: 1, Target: "h", Kind: "put", Status: journal.StatusChanged, Changed: &tr, Diff: hex.EncodeToString(big)},
		{Type: "effect_start", ID: 2, Target: "h", Kind: "put", Desc: "/b", Write: true},
		{Type: "effect_end", ID: 2, Target: "h", Kind: "put", Status: journal.StatusChanged, Changed: &tr, Diff: "-small\n+diff\n"},
		{Type: "recap"},
	}}
	b, err := Encode(rec, 200<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 200<<10 || rec.Cut == "" {
		t.Fatalf("encoded %d bytes, cut %q", len(b), rec.Cut)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Events[2].Diff; !strings.Contains(d, CutMarker) || len(d) > 70<<10 {
		t.Errorf("big diff: %d bytes, marker %v", len(d), strings.Contains(d, CutMarker))
	}
	if got.Events[4].Diff != "-small\n+diff\n" {
		t.Errorf("the small diff was cut: %q", got.Events[4].Diff)
	}
	small := &Record{V: RecordVersion, RunID: "s", Events: rec.Events[3:]}
	if _, err := Encode(small, 200<<10); err != nil || small.Cut != "" {
		t.Errorf("small record: %v, cut %q", err, small.Cut)
	}
	if _, err := Decode([]byte("not gzip")); err == nil {
		t.Error("garbage decoded")
	}
}
