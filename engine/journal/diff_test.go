package journal

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// apply rebuilds both sides from an edit script, checking its indices.
func apply(t *testing.T, a, b []string, ops []edit) {
	t.Helper()
	var gotA, gotB []string
	for _, e := range ops {
		switch e.kind {
		case keep:
			if a[e.a] != b[e.b] {
				t.Fatalf("keep of different lines %q and %q", a[e.a], b[e.b])
			}
			gotA, gotB = append(gotA, a[e.a]), append(gotB, b[e.b])
		case del:
			gotA = append(gotA, a[e.a])
		case ins:
			gotB = append(gotB, b[e.b])
		}
	}
	if strings.Join(gotA, "") != strings.Join(a, "") || strings.Join(gotB, "") != strings.Join(b, "") {
		t.Fatalf("the edit script does not rebuild its inputs")
	}
}

// lcs is the length of a longest common subsequence, by dynamic programming.
func lcs(a, b []string) int {
	prev := make([]int, len(b)+1)
	for i := range a {
		cur := make([]int, len(b)+1)
		for j := range b {
			if a[i] == b[j] {
				cur[j+1] = prev[j] + 1
			} else {
				cur[j+1] = max(prev[j+1], cur[j])
			}
		}
		prev = cur
	}
	return prev[len(b)]
}

func randomLines(r *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("line %d\n", r.Intn(6))
	}
	return out
}

// TestEditScriptMinimal: the script rebuilds both sides and keeps a longest
// common subsequence (myers is exact within its budget).
func TestEditScriptMinimal(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := range 500 {
		a, b := randomLines(r, r.Intn(30)), randomLines(r, r.Intn(30))
		ops := editScript(a, b)
		apply(t, a, b, ops)
		kept := 0
		for _, e := range ops {
			if e.kind == keep {
				kept++
			}
		}
		if want := lcs(a, b); kept != want {
			t.Fatalf("case %d: kept %d lines, a longest common subsequence has %d\na=%q\nb=%q", i, kept, want, a, b)
		}
	}
}

// TestDiffChangesEverywhere: a long document changed all over (a registry
// of thousands of nodes, each with a new status) gives a correct diff
// without myers' quadratic memory: past the work bound the changed middle is
// one hunk.
func TestDiffChangesEverywhere(t *testing.T) {
	var a, b []string
	for i := range 30000 {
		a = append(a, fmt.Sprintf("  \"node-%d\": %d,\n", i, i))
		if i%10 == 5 {
			b = append(b, fmt.Sprintf("  \"node-%d\": %d,\n", i, -i))
		} else {
			b = append(b, a[i])
		}
	}
	ops := editScript(a, b)
	apply(t, a, b, ops)
	d := Diff("registry.json", strings.Join(a, ""), strings.Join(b, ""))
	if !strings.HasPrefix(d, "--- registry.json\n+++ registry.json\n@@ -3,29997 +3,29997 @@\n") {
		t.Errorf("diff starts %q, want one hunk over the changed middle", d[:min(len(d), 120)])
	}
	// Changes within the bound still get the minimal script.
	small := editScript(a[:500], b[:500])
	apply(t, a[:500], b[:500], small)
	if n := len(small); n != 550 {
		t.Errorf("500 lines with 50 changed: %d edits, want 550 (450 kept, 50 deleted, 50 inserted)", n)
	}
}
