package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartupConfig says what the start-up benchmark runs.
type StartupConfig struct {
	Mno, Minimal string // binaries
	// Other is another mno build (e.g. before a change), OtherLabel its name.
	Other, OtherLabel string
	Runs              int // hyperfine runs per command
	Dir               string
}

// Timing is one command's hyperfine result, in seconds.
type Timing struct {
	Label                             string
	Command                           string
	Mean, Stddev, Median, Min, Max    float64
	User, System                      float64
	MinorFaults                       int64 // median, from wait4
	Size                              int64 // the binary's size in bytes
	InitTotal                         time.Duration
	InitPackages                      int
	InitTop                           []InitCost
	LinksClientset                    bool // k8s.io/client-go/kubernetes ran an init
	hyperfineName, binary, workingDir string
}

// InitCost is the time one package's init took (GODEBUG=inittrace=1),
// the least over several starts.
type InitCost struct {
	Package string
	Clock   time.Duration
	Bytes   int64
}

// StartupResult is the start-up part of a benchmark run.
type StartupResult struct {
	Load      string // load average when it started
	Busy      float64
	Timings   []Timing
	Hyperfine string // the command line
	Phases    *Phases
}

// RunStartup times, with hyperfine side by side, a minimal Go program, `mno
// version` and `mno run hello` (and the other build's), and profiles what
// is left of mno's start: its package inits (the least of 30 starts each,
// from GODEBUG=inittrace=1) and its page faults.
func RunStartup(ctx context.Context, cfg StartupConfig) (*StartupResult, error) {
	if _, err := exec.LookPath("hyperfine"); err != nil {
		return nil, fmt.Errorf("hyperfine is not installed (apt-get install hyperfine; `make bench` does it)")
	}
	work := filepath.Join(cfg.Dir, "startup")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	// hello runs in a directory without a workspace, so it is the embedded
	// playbook, as from an installed mno anywhere.
	ts := []Timing{{Label: "minimal Go program", binary: cfg.Minimal, Command: cfg.Minimal}}
	add := func(label, bin string) {
		ts = append(ts,
			Timing{Label: label + " version", binary: bin, Command: bin + " version"},
			Timing{Label: label + " run hello", binary: bin, Command: bin + " run hello", workingDir: work})
	}
	add("mno", cfg.Mno)
	if cfg.Other != "" {
		add(cfg.OtherLabel, cfg.Other)
	}
	res := &StartupResult{Load: LoadAvg()}
	busy := WaitQuiet(ctx, 0.5, 10*time.Second)
	res.Busy = busy
	jsonOut := filepath.Join(work, "hyperfine.json")
	args := []string{"-N", "--warmup", "20", "--runs", strconv.Itoa(cfg.Runs), "--export-json", jsonOut}
	for i := range ts {
		ts[i].hyperfineName = fmt.Sprintf("t%d", i)
		args = append(args, "-n", ts[i].hyperfineName, ts[i].Command)
	}
	display := "hyperfine " + strings.Join(args, " ")
	for i := range ts {
		display = strings.Replace(display, "-n "+ts[i].hyperfineName+" ", "", 1)
	}
	res.Hyperfine = strings.Replace(display, jsonOut, "OUT.json", 1)
	cmd := exec.CommandContext(ctx, "hyperfine", args...)
	cmd.Dir = work // hello's working directory; the others do not care
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("hyperfine: %v\n%s", err, tail(string(out), 20))
	}
	var hf struct {
		Results []struct {
			Command                                      string
			Mean, Stddev, Median, Min, Max, User, System float64
		}
	}
	data, err := os.ReadFile(jsonOut)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &hf); err != nil {
		return nil, fmt.Errorf("hyperfine's JSON: %w", err)
	}
	for _, r := range hf.Results {
		for i := range ts {
			if ts[i].hyperfineName == r.Command {
				t := &ts[i]
				t.Mean, t.Stddev, t.Median, t.Min, t.Max, t.User, t.System = r.Mean, r.Stddev, r.Median, r.Min, r.Max, r.User, r.System
			}
		}
	}
	for i := range ts {
		t := &ts[i]
		if fi, err := os.Stat(t.binary); err == nil {
			t.Size = fi.Size()
		}
		if t.MinorFaults, err = minorFaults(t, 21); err != nil {
			return nil, err
		}
		if strings.HasSuffix(t.Label, " version") {
			if err := initTrace(t, 30); err != nil {
				return nil, err
			}
		}
	}
	res.Timings = ts
	return res, nil
}

// minorFaults is the median of the command's minor page faults over n runs.
func minorFaults(t *Timing, n int) (int64, error) {
	var v []int64
	for range n {
		f := strings.Fields(t.Command)
		cmd := exec.Command(f[0], f[1:]...)
		cmd.Dir = t.workingDir
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%s: %w", t.Command, err)
		}
		v = append(v, cmd.ProcessState.SysUsage().(*syscall.Rusage).Minflt)
	}
	slices.Sort(v)
	return v[len(v)/2], nil
}

// initTrace runs the command n times with GODEBUG=inittrace=1 and keeps each
// package's least init time: what its init costs without the noise.
func initTrace(t *Timing, n int) error {
	least := map[string]InitCost{}
	for range n {
		f := strings.Fields(t.Command)
		cmd := exec.Command(f[0], f[1:]...)
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", t.Command, err)
		}
		sc := bufio.NewScanner(&stderr)
		for sc.Scan() {
			// init k8s.io/api/core/v1 @62 ms, 0.78 ms clock, 99976 bytes, 553 allocs
			f := strings.Fields(sc.Text())
			if len(f) < 9 || f[0] != "init" {
				continue
			}
			ms, err1 := strconv.ParseFloat(f[4], 64)
			b, err2 := strconv.ParseInt(f[7], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			c := InitCost{Package: f[1], Clock: time.Duration(ms * float64(time.Millisecond)), Bytes: b}
			if old, ok := least[c.Package]; !ok || c.Clock < old.Clock {
				least[c.Package] = c
			}
		}
	}
	for _, c := range least {
		t.InitTotal += c.Clock
		t.InitPackages++
		t.InitTop = append(t.InitTop, c)
		if strings.HasPrefix(c.Package, "k8s.io/client-go/kubernetes") {
			t.LinksClientset = true
		}
	}
	slices.SortFunc(t.InitTop, func(a, b InitCost) int { return int(b.Clock - a.Clock) })
	if len(t.InitTop) > 8 {
		t.InitTop = t.InitTop[:8]
	}
	return nil
}

// Phases is where the time of `mno run sync` at N = 1 goes, from its JSONL
// events (medians over the runs): when nothing changes, so the push is a
// read.
type Phases struct {
	Runs int
	// Start: process start to run_start (runtime, CLI, loading the playbook
	// and its roles). API: run_start to the first SSH connect (the API
	// client's connection and the ConfigMap reads). Connect: the SSH
	// connection. Push: connect done to the last SSH effect's end. Status:
	// to the recap (the registry update). Exit: recap to the process's exit.
	Start, API, Connect, Push, Status, Exit, Total time.Duration
}

// MeasurePhases runs `mno run --output json sync` n times against the N = 1
// fixture (second runs: nothing changes) and splits their time into Phases.
func MeasurePhases(ctx context.Context, m *Mno, n int) (*Phases, error) {
	var all [7][]time.Duration
	for range n {
		WaitQuiet(ctx, 0.5, 5*time.Second)
		cmd := exec.CommandContext(ctx, m.Bin, append([]string{"run", "--output", "json", "sync"}, m.Args...)...)
		cmd.Env = append(os.Environ(), "MNO_HOME="+m.Home, "KUBECONFIG="+m.Kubeconfig)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		spawn := time.Now()
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("mno run --output json sync: %v\n%s", err, tail(stderr.String(), 20))
		}
		exit := time.Now()
		var runStart, connStart, connEnd, lastSSH, recap time.Time
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e struct{ Type, Time, Target, Kind string }
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, e.Time)
			if err != nil {
				continue
			}
			switch {
			case e.Type == "run_start":
				runStart = at
			case e.Type == "effect_start" && e.Kind == "connect" && connStart.IsZero():
				connStart = at
			case e.Type == "effect_end" && e.Kind == "connect" && connEnd.IsZero():
				connEnd = at
			case e.Type == "effect_end" && e.Target != "cluster" && e.Target != "local" && e.Target != "":
				lastSSH = at
			case e.Type == "recap":
				recap = at
			}
		}
		if runStart.IsZero() || connStart.IsZero() || connEnd.IsZero() || recap.IsZero() {
			return nil, fmt.Errorf("mno run --output json sync: events lack run_start, connect or recap:\n%s", tail(stdout.String(), 20))
		}
		lastSSH = later(lastSSH, connEnd)
		for i, d := range []time.Duration{runStart.Sub(spawn), connStart.Sub(runStart), connEnd.Sub(connStart),
			lastSSH.Sub(connEnd), recap.Sub(lastSSH), exit.Sub(recap), exit.Sub(spawn)} {
			all[i] = append(all[i], d)
		}
	}
	p := &Phases{Runs: n}
	for i, d := range []*time.Duration{&p.Start, &p.API, &p.Connect, &p.Push, &p.Status, &p.Exit, &p.Total} {
		*d = medianD(all[i])
	}
	return p, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func ms(s float64) string { return fmt.Sprintf("%.1f", s*1000) }

func msD(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// Markdown renders the start-up section of RESULTS.md.
func (r *StartupResult) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Start-up\n\n")
	w("Process start to exit, side by side with a minimal Go program, by hyperfine (no shell; %d warm-up\n", 20)
	w("runs; `mno run hello` in a directory with no workspace, so the embedded playbook, which runs\n")
	w("`uname -n`). Load average %s when it started; the rest of the machine kept %.2f CPUs busy.\n\n", r.Load, r.Busy)
	w("| command | mean ms | ± σ | median | min | max | user ms | sys ms | minor faults | binary |\n")
	w("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range r.Timings {
		w("| %s | **%s** | %s | %s | %s | %s | %s | %s | %d | %.1f MB |\n", t.Label, ms(t.Mean), ms(t.Stddev), ms(t.Median), ms(t.Min), ms(t.Max),
			ms(t.User), ms(t.System), t.MinorFaults, float64(t.Size)/1e6)
	}
	w("\nCommand: `%s`\n\n", r.Hyperfine)
	for _, t := range r.Timings {
		if t.InitPackages == 0 {
			continue
		}
		cs := "does not link"
		if t.LinksClientset {
			cs = "**links**"
		}
		w("%s: package init %s ms over %d packages (least of 30 starts each, GODEBUG=inittrace=1); it %s client-go's clientset. Largest:\n",
			strings.TrimSuffix(t.Label, " version"), msD(t.InitTotal), t.InitPackages, cs)
		for _, c := range t.InitTop {
			w("`%s` %s ms (%d KB); ", c.Package, msD(c.Clock), c.Bytes/1024)
		}
		w("\n\n")
	}
	if p := r.Phases; p != nil {
		w("`mno run sync` at N = 1 when nothing changes, from its JSON events (median of %d runs, ms): process start and\n", p.Runs)
		w("loading the playbook and roles **%s**; API client and the four ConfigMaps **%s**; SSH connection **%s**;\n", msD(p.Start), msD(p.API), msD(p.Connect))
		w("the push (a read when nothing changes) **%s**; registry status update **%s**; exit **%s**; total **%s**.\n\n",
			msD(p.Push), msD(p.Status), msD(p.Exit), msD(p.Total))
	}
	return b.String()
}

// Summary is the start-up part of the README's performance section.
func (r *StartupResult) Summary() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("**Start-up** (hyperfine, mean ± σ in ms, load average %s):", r.Load)
	for _, t := range r.Timings {
		w(" %s %s ± %s;", t.Label, ms(t.Mean), ms(t.Stddev))
	}
	s := strings.TrimSuffix(b.String(), ";") + "."
	b.Reset()
	b.WriteString(s)
	for _, t := range r.Timings {
		if t.Label == "mno version" {
			w(" The mno binary is %.0f MB; its package inits take %s ms.", float64(t.Size)/1e6, msD(t.InitTotal))
		}
	}
	if p := r.Phases; p != nil {
		w(" A sync at N = 1 spends %s ms starting and loading its roles and %s ms on the API before its SSH connection (%s ms).",
			msD(p.Start), msD(p.API), msD(p.Connect))
	}
	return b.String()
}
