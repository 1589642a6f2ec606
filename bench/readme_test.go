package bench

import (
	"os"
	"strings"
	"testing"
)

// TestReadmePerformance: the README's performance section is the one the
// last `make bench` wrote (README-performance.md, from the same run as
// RESULTS.md), so the numbers users read are measured ones.
func TestReadmePerformance(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	perf, err := os.ReadFile("README-performance.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), strings.TrimSpace(string(perf))) {
		t.Errorf("README.md's performance section differs from bench/README-performance.md (written by the last make bench): copy it over")
	}
	results, err := os.ReadFile("RESULTS.md")
	if err != nil {
		t.Fatal(err)
	}
	// Both files come from one run: the table's N=100 row holds numbers that RESULTS.md has.
	for _, line := range strings.Split(string(perf), "\n") {
		if !strings.HasPrefix(line, "| 100 |") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("N=100 row: %q", line)
		}
		mnoFirst := strings.TrimSpace(cells[2])
		if !strings.Contains(string(results), "**"+mnoFirst+"**") {
			t.Errorf("README-performance.md's mno first run at N=100 (%s) is not in RESULTS.md: not from the same run", mnoFirst)
		}
		return
	}
	t.Error("README-performance.md has no N=100 row")
}
