package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMergeNarrowedRun: a run that measured only start-up and N = 1 keeps,
// from the last full run's files, the other Ns and the scale run, each marked
// with the run it comes from; what it measured replaces the old numbers; and
// merging the merged files again changes nothing.
func TestMergeNarrowedRun(t *testing.T) {
	m := Machine{CPUs: 2, CPUModel: "Test CPU", Versions: map[string]string{}, LoadStart: "0.10 0.20 0.30", LoadEnd: "0.1 0.2 0.3",
		Started: time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC), Took: time.Minute, Command: "make bench BENCH_N=1 BENCH_SCALE=0"}
	sample := func(d time.Duration) Sample { return Sample{Wall: d} }
	r := &Result{N: 1, VPS: 1, Identical: true, Commands: map[string]string{"mno": "mno run sync"}, Cells: map[string]map[string]*Cell{
		"mno":   {First: {Samples: []Sample{sample(123 * time.Millisecond)}}, Second: {Samples: []Sample{sample(111 * time.Millisecond)}, Writes: []int{0}, RVChanged: []bool{false}}},
		"floor": {First: {Samples: []Sample{sample(100 * time.Millisecond)}}, Second: {Samples: []Sample{sample(99 * time.Millisecond)}}},
	}}
	su := &StartupResult{Load: "0.10 0.20 0.30", Timings: []Timing{{Label: "minimal Go program", Mean: 0.001}, {Label: "mno version", Mean: 0.004, InitPackages: 3}}}
	// The files of a full run (the one before this change).
	oldResults, oldPerf := readTestFile(t, "testdata/RESULTS-full.md"), readTestFile(t, "testdata/README-performance-full.md")

	results := MergeResults(oldResults, Report(m, []*Result{r}, nil, su))
	perf := MergePerformance(oldPerf, PerformanceSection(m, []*Result{r}, nil, su), results)

	_, sections := splitSections(results)
	var keys []string
	for _, s := range sections {
		keys = append(keys, s.key)
		kept := strings.Contains(s.text, keptMark)
		if wantKept := s.key != "Machine" && s.key != "Start-up" && s.key != "N = 1"; kept != wantKept {
			t.Errorf("section %s: kept mark %v, want %v", s.key, kept, wantKept)
		}
	}
	if got := strings.Join(keys, ", "); got != "Machine, Start-up, N = 1, N = 10, N = 50, N = 100, Scale" {
		t.Errorf("sections %s", got)
	}
	if !strings.Contains(results, "| mno | first | **0.123** |") || strings.Contains(results, "| mno | first | **0.195** |") {
		t.Error("RESULTS.md: N = 1 is not this run's")
	}
	for _, want := range []string{
		"| 1 | 0.123 | 0.100 |",
		"| 100 | 10.9 | 10.2 |",
		"Rows N = 10, 50, 100: kept from an earlier run (2026-11-27 11:10 UTC, `make bench`, load average 5.15 4.73 8.41 at its start)",
		"**Start-up** (hyperfine",
		"At 1000 hosts",
	} {
		if !strings.Contains(perf, want) {
			t.Errorf("performance section lacks %q:\n%s", want, perf)
		}
	}
	if strings.Index(perf, "| 1 |") > strings.Index(perf, "| 10 |") {
		t.Error("rows out of order")
	}
	if again := MergeResults(results, results); again != results {
		t.Errorf("merging the merged RESULTS.md with itself changed it")
	}
	if again := MergePerformance(perf, perf, results); again != perf {
		t.Errorf("merging the merged section with itself changed it:\n%s", again)
	}
}

func readTestFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
