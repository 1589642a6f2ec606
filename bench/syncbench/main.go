// Command syncbench is `make bench`: it times `mno run sync` against N real
// sshd hosts (lab/hosts) and a real kube-apiserver (lab/kubeapi), side by
// side with an equivalent Ansible playbook and the raw SSH floor
// (bench/floor), checks that all three leave byte-identical files and that a
// second sync writes nothing, runs the in-process scale test, and writes
// bench/RESULTS.md and bench/README-performance.md.
//
//	go run ./bench/syncbench -mno bin/mno -floor bin/mno-bench-floor [-n 1,10,50,100] [-runs 5] [-scale 1000]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno/bench"
	"github.com/mno-sh/mno/lab/hosts"
)

// lab/hosts must never leave the main OS thread inside a host's namespaces.
func init() { runtime.LockOSThread() }

func main() {
	var (
		ns       = flag.String("n", envOr("BENCH_N", "1,10,50,100"), "host counts, comma-separated, or none ($BENCH_N)")
		runs     = flag.Int("runs", envInt("BENCH_RUNS", 5), "repetitions per N ($BENCH_RUNS)")
		ansRuns  = flag.Int("ansible-runs", envInt("BENCH_ANSIBLE_RUNS", 3), "repetitions that include Ansible at N >= 50, where one run takes minutes; 0: all ($BENCH_ANSIBLE_RUNS)")
		scale    = flag.Int("scale", envInt("BENCH_SCALE", 1000), "hosts of the in-process scale run; 0 skips it ($BENCH_SCALE)")
		mnoBin   = flag.String("mno", "bin/mno", "the mno binary")
		floorBin = flag.String("floor", "bin/mno-bench-floor", "the floor binary (bench/floor)")
		rusage   = flag.String("rusage", "bin/mno-bench-rusage", "the measuring wrapper (bench/rusage)")
		tools    = flag.String("tools", "mno,floor,ansible", "tools to time")
		out      = flag.String("out", "bench/RESULTS.md", "results file; empty: stdout only")
		perf     = flag.String("perf", "bench/README-performance.md", "README performance section; empty: none")
		quickAck = flag.Bool("floor-quickack", true, "the floor re-arms TCP_QUICKACK as mno does")
		quiet    = flag.Float64("quiet", 0.5, "before each repetition wait for the machine to be less busy than this share")
		quietMax = flag.Duration("quiet-wait", 10*time.Second, "how long to wait for -quiet at most")
		keep     = flag.Bool("keep", false, "keep the work directory")
		mnoArgs  = flag.String("mno-args", "", "extra arguments after `mno run sync`")
		other    = flag.String("other-mno", "", "another mno binary, timed as the tool mno-other (add it to -tools) and in the start-up run")
		otherLbl = flag.String("other-label", "mno-other", "what the start-up table calls -other-mno (e.g. \"mno before\")")
		startup  = flag.Bool("startup", envOr("BENCH_STARTUP", "1") != "0", "time start-up with hyperfine ($BENCH_STARTUP=0 skips it)")
		suRuns   = flag.Int("startup-runs", envInt("BENCH_STARTUP_RUNS", 200), "hyperfine runs per command ($BENCH_STARTUP_RUNS)")
		minimal  = flag.String("minimal", "bin/mno-bench-minimal", "the minimal Go program (bench/minimal) start-up is compared with")
		phases   = flag.Int("phases", 15, "runs of `mno run --output json sync` at N = 1 that split its time into phases (0: none)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	su := startupFlags{on: *startup, runs: *suRuns, minimal: *minimal, otherLabel: *otherLbl, phases: *phases}
	if err := run(ctx, *ns, *runs, *scale, *mnoBin, *floorBin, *tools, *out, *perf, *quickAck, *quiet, *quietMax, *keep, *mnoArgs, *other, *rusage, *ansRuns, su); err != nil {
		fmt.Fprintln(os.Stderr, "syncbench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

// startupFlags configure the start-up part.
type startupFlags struct {
	on                  bool
	runs, phases        int
	minimal, otherLabel string
}

func run(ctx context.Context, nsFlag string, runs, scaleN int, mnoBin, floorBin, toolsFlag, out, perf string,
	quickAck bool, quiet float64, quietMax time.Duration, keep bool, mnoArgs, other, rusage string, ansRuns int, su startupFlags) error {
	var ns []int
	maxN := 0
	if nsFlag == "none" {
		nsFlag = ""
	}
	for _, f := range strings.Split(nsFlag, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 253 {
			return fmt.Errorf("-n: %q is not a host count from 1 to 253", f)
		}
		ns = append(ns, n)
		maxN = max(maxN, n)
	}
	tools := strings.Split(toolsFlag, ",")
	for i, t := range tools {
		tools[i] = strings.TrimSpace(t)
		if tools[i] == "ansible" {
			if _, err := exec.LookPath("ansible-playbook"); err != nil {
				return errors.New("ansible-playbook is not installed (apt-get install ansible; `make bench` does it)")
			}
		}
	}
	var err error
	if mnoBin, err = filepath.Abs(mnoBin); err != nil {
		return err
	}
	if floorBin, err = filepath.Abs(floorBin); err != nil {
		return err
	}
	if rusage, err = filepath.Abs(rusage); err != nil {
		return err
	}
	command := "go run ./bench/syncbench " + strings.Join(os.Args[1:], " ")
	if c := os.Getenv("BENCH_COMMAND"); c != "" {
		command = c
	}
	machine := bench.DescribeMachine(command)
	logf("machine: %d × %s, load %s; %s; %s; %s", machine.CPUs, machine.CPUModel, machine.LoadStart,
		machine.Versions["go"], machine.Versions["openssh"], machine.Versions["ansible"])

	dir, err := os.MkdirTemp("", "mno-bench-")
	if err != nil {
		return err
	}
	if keep {
		logf("work directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	idFile, line, _, err := bench.Identity(dir)
	if err != nil {
		return err
	}
	logf("starting the kube-apiserver")
	api, err := bench.StartAPI(ctx, dir)
	if err != nil {
		return fmt.Errorf("%w (run `make tools` first)", err)
	}
	defer api.Stop()
	client, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		return err
	}

	var results []*bench.Result
	var scaleRes *bench.ScaleResult
	var startupRes *bench.StartupResult
	// What an earlier run measured and this one does not is kept (marked).
	oldOut, oldPerf := readOr(out), readOr(perf)
	write := func() error {
		machine.LoadEnd = bench.LoadAvg()
		machine.Took = time.Since(machine.Started)
		report := bench.MergeResults(oldOut, bench.Report(machine, results, scaleRes, startupRes))
		if out == "" {
			fmt.Print(report)
		} else if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			return err
		}
		if perf != "" {
			section := bench.MergePerformance(oldPerf, bench.PerformanceSection(machine, results, scaleRes, startupRes), report)
			return os.WriteFile(perf, []byte(section), 0o644)
		}
		return nil
	}
	if su.on {
		logf("start-up: hyperfine, %d runs per command", su.runs)
		minimal, err := filepath.Abs(su.minimal)
		if err != nil {
			return err
		}
		startupRes, err = bench.RunStartup(ctx, bench.StartupConfig{Mno: mnoBin, Minimal: minimal, Other: other, OtherLabel: su.otherLabel, Runs: su.runs, Dir: dir})
		if err != nil {
			return err
		}
		for _, t := range startupRes.Timings {
			logf("start-up: %-22s %6.1f ms ± %.1f (user %.1f, sys %.1f), %d minor faults", t.Label, t.Mean*1000, t.Stddev*1000, t.User*1000, t.System*1000, t.MinorFaults)
		}
		if err := write(); err != nil {
			return err
		}
	}

	if len(ns) > 0 {
		logf("starting %d sshd hosts", maxN)
		hctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		lab, err := hosts.Start(hctx, maxN, hosts.Names(bench.NodeNames(maxN)...), hosts.AuthorizedKeys(line))
		cancel()
		if err != nil {
			return err
		}
		defer func() {
			if err := lab.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "syncbench: stopping the hosts:", err)
			}
		}()
		logf("hosts on %s network", lab.Network())
		env := &bench.Env{Lab: lab, Client: client, Kube: api.Kubeconfig, Nodes: bench.NodesOf(lab), IDFile: idFile}
		var extra []string
		if mnoArgs != "" {
			extra = strings.Fields(mnoArgs)
		}
		cfg := bench.Config{Phases: su.phases, Runs: runs, AnsibleRuns: ansRuns, Dir: dir, MnoBin: mnoBin, OtherMno: other, Rusage: rusage, FloorBn: floorBin, MnoArgs: extra, QuickAck: quickAck,
			Tools: tools, QuietBelow: quiet, QuietWait: quietMax, Log: os.Stderr}
		for _, n := range ns {
			logf("N=%d: %d repetitions of %s", n, runs, strings.Join(tools, ", "))
			r, err := bench.RunN(ctx, cfg, env, n)
			if err != nil {
				return err
			}
			results = append(results, r)
			if err := write(); err != nil {
				return err
			}
		}
	}
	if scaleN > 0 {
		logf("scale run: %d in-process hosts", scaleN)
		d := filepath.Join(dir, "scale")
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		r, err := bench.RunScale(ctx, scaleN, d, api.Kubeconfig, client)
		if err != nil {
			return err
		}
		scaleRes = r
		logf("scale: first %.2fs second %.2fs, goroutines %d → peak %d → %d, RSS peak %.0f MiB, leak: %q",
			r.First.Seconds(), r.Second.Seconds(), r.GoroutinesBase, r.GoroutinesPeak, r.GoroutinesAfter, float64(r.RSSPeak)/1024, r.Leak)
	}
	if err := write(); err != nil {
		return err
	}
	if out != "" {
		logf("wrote %s and %s", out, perf)
	}
	return nil
}

// readOr returns the file's content, "" if there is none.
func readOr(path string) string {
	if path == "" {
		return ""
	}
	b, _ := os.ReadFile(path)
	return string(b)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
