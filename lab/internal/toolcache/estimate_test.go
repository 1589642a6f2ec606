package toolcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGo puts a go command first on PATH that plans n packages (two more
// already cached) and "compiles" them in step seconds each, or fails after
// half of them with fail; the binary it writes is a shell script.
func fakeGo(t *testing.T, n int, step string, fail bool) (src string) {
	t.Helper()
	bin, src := t.TempDir(), t.TempDir()
	for i := range n {
		// Package i has i+1 KB of source, so the work is not proportional to the count.
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("p%d.go", i)), bytes.Repeat([]byte("x"), (i+1)*1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf(`#!/bin/sh
n=%d step=%s fail=%v src=%s
case $1 in
list)
	echo -; echo -
	i=0; while [ $i -lt $n ]; do printf 'example.com/p%%d\t%%s\tp%%d.go \n' $i "$src" $i; i=$((i+1)); done ;;
build)
	while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
	i=0; while [ $i -lt $n ]; do
		echo example.com/p$i; sleep $step; i=$((i+1))
		if $fail && [ $i -eq $((n/2)) ]; then echo "p$i.go:1:1: syntax error" >&2; exit 1; fi
	done
	printf '#!/bin/sh\necho built\n' >"$out"; chmod +x "$out" ;;
*) echo "fake go: $*" >&2; exit 2 ;;
esac
`, n, step, fail, src)
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return src
}

// syncBuffer is a bytes.Buffer for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBuildProgressEstimates: a build says up front what it will compile and
// how long that takes on this machine, then how far it got with the time
// left, by weight; its status file tells other processes the same, and a
// finished build's speed is what the next build's first estimate uses.
func TestBuildProgressEstimates(t *testing.T) {
	src := fakeGo(t, 10, "0.05", false)
	cache := t.TempDir()
	out := filepath.Join(cache, "bin", "fake-v1")
	var progress syncBuffer
	if err := goBuild(t.Context(), src, out, Progress(&progress), 100*time.Millisecond, options{}, "./cmd/fake"); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	p := progress.String()
	if !strings.Contains(p, "fake-v1: 10 packages to compile (2 already in the build cache), about ") {
		t.Errorf("no plan with an estimate:\n%s", p)
	}
	still := regexp.MustCompile(`still building fake-v1: (\d+) of 10 packages compiled \((\d+)% of the work\), \d+s so far(, about \d+s left|, linking)?\n`).FindAllStringSubmatch(p, -1)
	if len(still) == 0 {
		t.Fatalf("no progress lines:\n%s", p)
	}
	last := -1
	for _, m := range still {
		var n, pct int
		fmt.Sscan(m[1], &n)
		fmt.Sscan(m[2], &pct)
		if n < last || pct > 100 {
			t.Errorf("progress went from %d to %d packages (%d%%)", last, n, pct)
		}
		// Package i weighs packageCost + (i+1) KB: the share of the work is by weight.
		var done, total int64
		for i := range 10 {
			w := int64(packageCost + (i+1)*1000)
			total += w
			if i < n {
				done += w
			}
		}
		if want := int(100 * done / total); pct != want && pct != want+1 && pct != want-1 {
			t.Errorf("%d packages compiled shown as %d%% of the work, want %d%%", n, pct, want)
		}
		last = n
	}
	if !strings.Contains(p, "built "+out+" in ") {
		t.Errorf("no built line:\n%s", p)
	}
	st, err := ReadStatus(cache, "fake-v1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseBuilt || st.Compiled != 10 || st.Packages != 10 || st.Cached != 2 || st.Done != st.Total || st.Took <= 0 || st.Binary != out {
		t.Errorf("status after the build: %+v", st)
	}
	// The machine's rate now comes from this build only if it took over a minute.
	if r := machineRate(cache); r != defaultRate {
		t.Errorf("rate after a 1 s build = %v, want the default %v", r, float64(defaultRate))
	}
	st.Took, st.Total = 2*time.Minute, 60_000_000
	if err := writeStatus(cache, st); err != nil {
		t.Fatal(err)
	}
	if r := machineRate(cache); r != 500_000 {
		t.Errorf("rate after a 2-minute build of 60 MB-eq = %v, want 500000", r)
	}
}

func TestEstimateLeft(t *testing.T) {
	w := Work{Total: 1000, Packages: 10}
	for _, tc := range []struct {
		name    string
		done    int64
		elapsed time.Duration
		rate    float64
		want    time.Duration
		ok      bool
	}{
		{"nothing done: the machine's rate", 0, 0, 10, 100 * time.Second, true},
		{"too early for this build's rate", 40, 30 * time.Second, 10, 96 * time.Second, true},
		{"too young for this build's rate", 500, 10 * time.Second, 10, 50 * time.Second, true},
		{"5% done and 20 s old: this build's rate", 50, 20 * time.Second, 10, 380 * time.Second, true},
		{"half done in a minute", 500, time.Minute, 1, time.Minute, true},
		{"all done", 1000, time.Minute, 1, 0, true},
		{"no rate known", 0, 0, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := estimateLeft(w, tc.done, tc.elapsed, tc.rate)
			if ok != tc.ok || got.Round(time.Second) != tc.want {
				t.Errorf("estimateLeft(done %d, %s, rate %v) = %s, %v; want %s, %v", tc.done, tc.elapsed, tc.rate, got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := estimateLeft(Work{}, 0, time.Minute, 10); ok {
		t.Error("an estimate without a plan")
	}
	for d, want := range map[time.Duration]string{3 * time.Second: "about 5s", 42 * time.Second: "about 40s", 80 * time.Second: "about 1m20s",
		150 * time.Second: "about 2m30s", 9*time.Minute + 50*time.Second: "about 10m", 23*time.Minute + 20*time.Second: "about 23m",
		time.Hour: "about 1h", 58 * time.Minute: "about 1h", 85 * time.Minute: "about 1h30m", 2*time.Hour + 3*time.Minute: "about 2h"} {
		if got := roughly(d); got != want {
			t.Errorf("roughly(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestWaitForBuild: a waiter (the lab's docker stand-in, say) follows a
// build another process runs and returns once the binary is there; it gives
// up at once when the estimate is longer than it may wait, and names the log
// when the build failed or nothing builds.
func TestWaitForBuild(t *testing.T) {
	cache := t.TempDir()
	out := filepath.Join(cache, "bin", "fake-v1")
	if err := Wait(t.Context(), cache, "fake-v1", out, &bytes.Buffer{}, time.Second, 0); !errors.Is(err, ErrNotBuilding) {
		t.Fatalf("Wait with no build: %v, want ErrNotBuilding", err)
	}

	src := fakeGo(t, 10, "0.2", false)
	done := make(chan error, 1)
	go func() { done <- goBuild(context.Background(), src, out, Progress(nil), time.Hour, options{}, ".") }()
	waitFor(t, "the build to start compiling", func() bool {
		s, err := ReadStatus(cache, "fake-v1")
		return err == nil && s.Phase == PhaseCompiling
	})
	// The first estimate is the plan at the default rate: far more than 1 ms.
	if err := Wait(t.Context(), cache, "fake-v1", out, &bytes.Buffer{}, time.Second, time.Millisecond); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "fake-v1: ") {
		t.Errorf("Wait with a 1ms limit: %v, want ErrTooLong with the build's progress", err)
	}
	var progress syncBuffer
	if err := Wait(t.Context(), cache, "fake-v1", out, &progress, 300*time.Millisecond, time.Minute); err != nil {
		t.Fatalf("Wait: %v\n%s", err, progress.String())
	}
	if err := Executable(out); err != nil {
		t.Errorf("Wait returned before the binary was there: %v", err)
	}
	if p := progress.String(); !strings.Contains(p, "waiting for fake-v1: ") || !strings.Contains(p, "fake-v1 is built (waited ") {
		t.Errorf("Wait's progress:\n%s", p)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	failing := filepath.Join(cache, "bin", "broken-v1")
	src = fakeGo(t, 4, "0.01", true)
	if err := goBuild(t.Context(), src, failing, Progress(nil), time.Hour, options{}, "."); err == nil {
		t.Fatal("the failing build succeeded")
	}
	err := Wait(t.Context(), cache, "broken-v1", failing, &bytes.Buffer{}, time.Second, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "the build failed") || !strings.Contains(err.Error(), LogPath(cache, "broken-v1")) {
		t.Errorf("Wait for a failed build: %v, want the failure and its log", err)
	}
	if f := Failed(cache); len(f) != 1 || f[0].Name != "broken-v1" || !strings.Contains(f[0].Line(), "the build failed: building broken-v1") {
		t.Errorf("Failed() = %+v, want the broken build", f)
	}

	// A build whose process died (status says compiling, the process is gone).
	st, _ := ReadStatus(cache, "fake-v1")
	st.Name, st.Phase, st.Builder.PID = "dead-v1", PhaseCompiling, 1<<30
	if err := writeStatus(cache, st); err != nil {
		t.Fatal(err)
	}
	err = Wait(t.Context(), cache, "dead-v1", filepath.Join(cache, "bin", "dead-v1"), &bytes.Buffer{}, time.Second, time.Minute)
	if !errors.Is(err, ErrNotBuilding) || !strings.Contains(err.Error(), "the last build stopped") {
		t.Errorf("Wait for a dead build: %v", err)
	}
	if _, err := ReadStatus(cache, "never"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadStatus of a build that never ran: %v", err)
	}
}

// TestFillWaiterSeesProgress: a builder waiting for the lock (a second
// `make tools`, `make test` after `make lab`) prints the running build's
// progress line, not only that it waits.
func TestFillWaiterSeesProgress(t *testing.T) {
	cache := t.TempDir()
	out := filepath.Join(cache, "bin", "fake-v1")
	lock := filepath.Join(cache, "src", "fake-v1.lock")
	src := fakeGo(t, 10, "0.2", false)
	present := func() bool { return Executable(out) == nil }
	build := func(progress io.Writer) error {
		return goBuild(context.Background(), src, out, progress, time.Hour, options{}, ".")
	}
	done := make(chan error, 1)
	go func() { done <- Fill(context.Background(), lock, nil, present, build) }()
	waitFor(t, "the first build to compile", func() bool {
		s, err := ReadStatus(cache, "fake-v1")
		return err == nil && s.Phase == PhaseCompiling
	})
	var progress syncBuffer
	if err := Fill(t.Context(), lock, &progress, present, build); err != nil {
		t.Fatal(err)
	}
	if p := progress.String(); !strings.Contains(p, "waiting for another build holding "+lock) || !strings.Contains(p, "waiting for fake-v1: ") {
		t.Errorf("the waiting builder said:\n%s", p)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
