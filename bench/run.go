package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno/lab/hosts"
)

// Phases of a repetition: every file changes, then nothing does.
const (
	First  = "first"
	Second = "second"
)

// Config is one benchmark run.
type Config struct {
	Ns   []int // host counts
	Runs int   // repetitions per N (each: first and second run of every tool)
	// AnsibleRuns, when positive, is how many of them include Ansible at
	// N >= 50, where one Ansible run takes minutes on two cores.
	AnsibleRuns int
	Dir         string // work directory (identity, Ansible project, floor spec)
	MnoBin      string
	// OtherMno is another build of mno, timed as the tool "mno-other" (for
	// before/after comparisons of a change).
	OtherMno string
	FloorBn  string
	Rusage   string // the measuring wrapper (bench/rusage)
	// MnoArgs follow `mno run sync`.
	MnoArgs []string
	// QuickAck makes the floor re-arm TCP_QUICKACK as mno does.
	QuickAck bool
	// Tools to time, in the order of the first repetition (rotated after).
	Tools []string
	// QuietBelow and QuietWait: before each repetition, wait at most
	// QuietWait for the machine to be less than QuietBelow busy.
	QuietBelow float64
	QuietWait  time.Duration
	// Phases is how many `mno run --output json sync` runs at N = 1 split
	// its time into phases (0: none).
	Phases int
	Log    io.Writer
}

// Cell is the measurements of one tool, phase and N.
type Cell struct {
	Samples []Sample
	// Writes counts, per repetition, the paths on the hosts that a second
	// run changed (it must be 0 for mno), and RVChanged whether it changed
	// a ConfigMap's resourceVersion.
	Writes    []int
	RVChanged []bool
}

// Result is everything measured for one N.
type Result struct {
	N        int
	VPS      int
	Laptops  int
	Cells    map[string]map[string]*Cell // tool → phase → cell
	Commands map[string]string
	// Identical says the three tools left byte-identical files (checked
	// after every first and second run against mno's roles' rendering).
	Identical bool
	Notes     []string
	// Phases splits mno's time at N = 1 (Config.Phases runs), nil if not measured.
	Phases *Phases
}

// Env is what every N shares: hosts and the API server.
type Env struct {
	Lab    *hosts.Lab
	API    interface{ Stop() error }
	Client kubernetes.Interface
	Kube   string // kubeconfig path
	Nodes  []Node
	IDFile string
}

// RunN benchmarks the first n nodes of env.
func RunN(ctx context.Context, cfg Config, env *Env, n int) (*Result, error) {
	nodes := env.Nodes[:n]
	dir := filepath.Join(cfg.Dir, "n"+strconv.Itoa(n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	res := &Result{N: n, Cells: map[string]map[string]*Cell{}, Commands: map[string]string{}, Identical: true}
	for _, nd := range nodes {
		if nd.Kind == "vps" {
			res.VPS++
		} else {
			res.Laptops++
		}
	}
	if err := WriteCluster(ctx, env.Client, nodes); err != nil {
		return nil, err
	}
	if err := PrepareHosts(nodes); err != nil {
		return nil, err
	}
	want, err := ComputeExpected(ctx, env.Kube, dir)
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	tools := map[string]Tool{}
	for _, name := range cfg.Tools {
		switch name {
		case "mno":
			tools[name] = &Mno{Wrapper: cfg.Rusage, Bin: cfg.MnoBin, Home: home, Kubeconfig: env.Kube, Args: cfg.MnoArgs}
		case "mno-other":
			tools[name] = &Mno{Wrapper: cfg.Rusage, Label: name, Bin: cfg.OtherMno, Home: home, Kubeconfig: env.Kube, Args: cfg.MnoArgs}
		case "ansible":
			a, err := WriteAnsible(filepath.Join(dir, "ansible"), env.IDFile, n, nodes, want)
			if err != nil {
				return nil, err
			}
			a.Wrapper = cfg.Rusage
			tools[name] = a
		case "floor":
			spec := filepath.Join(dir, "floor.json")
			if err := WriteFloorSpec(spec, env.IDFile, cfg.QuickAck, nodes, want); err != nil {
				return nil, err
			}
			tools[name] = &Floor{Wrapper: cfg.Rusage, Bin: cfg.FloorBn, Spec: spec}
		default:
			return nil, fmt.Errorf("unknown tool %q", name)
		}
		res.Commands[name] = tools[name].Command()
		res.Cells[name] = map[string]*Cell{First: {}, Second: {}}
	}
	// mno's identity: the one the hosts authorise.
	if err := linkIdentity(env.IDFile, home); err != nil {
		return nil, err
	}
	var pids []int
	for _, nd := range nodes {
		pids = append(pids, nd.Host.PID)
	}
	timed := func(t Tool) (Sample, error) {
		u0 := MeasureUsage(pids)
		s, err := t.Run()
		s.Account(u0, MeasureUsage(pids))
		return s, err
	}
	for rep := range cfg.Runs {
		busy := WaitQuiet(ctx, cfg.QuietBelow, cfg.QuietWait)
		k := rep % len(cfg.Tools)
		order := append(append([]string(nil), cfg.Tools[k:]...), cfg.Tools[:k]...)
		for _, name := range order {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if name == "ansible" && n >= 50 && cfg.AnsibleRuns > 0 && rep >= cfg.AnsibleRuns {
				continue
			}
			t := tools[name]
			if err := ResetHosts(nodes); err != nil {
				return nil, err
			}
			if err := ResetRegistry(ctx, env.Client, nodes); err != nil {
				return nil, err
			}
			s1, err := timed(t)
			if err != nil {
				return nil, fmt.Errorf("N=%d %s first run: %w", n, name, err)
			}
			s1.Busy = busy
			if bad := CheckFiles(nodes, want); len(bad) > 0 {
				res.Identical = false
				res.Notes = append(res.Notes, fmt.Sprintf("%s first run, repetition %d: %s", name, rep+1, strings.Join(bad, "; ")))
			}
			snap, err := TakeSnapshot(nodes)
			if err != nil {
				return nil, err
			}
			rv, err := ResourceVersions(ctx, env.Client)
			if err != nil {
				return nil, err
			}
			s2, err := timed(t)
			if err != nil {
				return nil, fmt.Errorf("N=%d %s second run: %w", n, name, err)
			}
			s2.Busy = busy
			if bad := CheckFiles(nodes, want); len(bad) > 0 {
				res.Identical = false
				res.Notes = append(res.Notes, fmt.Sprintf("%s second run, repetition %d: %s", name, rep+1, strings.Join(bad, "; ")))
			}
			snap2, err := TakeSnapshot(nodes)
			if err != nil {
				return nil, err
			}
			rv2, err := ResourceVersions(ctx, env.Client)
			if err != nil {
				return nil, err
			}
			changed := snap2.Changed(snap)
			rvChanged := false
			for k := range rv {
				if rv[k] != rv2[k] {
					rvChanged = true
				}
			}
			c1, c2 := res.Cells[name][First], res.Cells[name][Second]
			c1.Samples = append(c1.Samples, s1)
			c2.Samples = append(c2.Samples, s2)
			c2.Writes = append(c2.Writes, len(changed))
			c2.RVChanged = append(c2.RVChanged, rvChanged)
			if name == "mno" && (len(changed) > 0 || rvChanged) {
				res.Notes = append(res.Notes, fmt.Sprintf("mno's second run wrote (repetition %d): %d paths %s; ConfigMap resourceVersion changed: %v",
					rep+1, len(changed), strings.Join(first(changed, 5), ", "), rvChanged))
			}
			fmt.Fprintf(cfg.Log, "N=%-3d rep %d  %-9s first %7.3fs  second %7.3fs  rss %5.1f MiB  cpu %.2fs+hosts %.2fs  others %.2f CPUs  load %.1f  second-run writes %d\n",
				n, rep+1, name, s1.Wall.Seconds(), s2.Wall.Seconds(), float64(max(s1.MaxRSSKB, s2.MaxRSSKB))/1024,
				(s1.User + s1.Sys).Seconds(), s1.HostsCPU.Seconds(), s1.Others, s1.Load1, len(changed))
		}
	}
	if m, ok := tools["mno"].(*Mno); ok && n == 1 && cfg.Phases > 0 {
		if res.Phases, err = MeasurePhases(ctx, m, cfg.Phases); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "N=1 phases (median of %d, ms): start %s, API %s, connect %s, push %s, status %s, exit %s, total %s\n", cfg.Phases,
			msD(res.Phases.Start), msD(res.Phases.API), msD(res.Phases.Connect), msD(res.Phases.Push), msD(res.Phases.Status), msD(res.Phases.Exit), msD(res.Phases.Total))
	}
	return res, nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// linkIdentity puts the identity in MNO_HOME, where mno looks for it.
func linkIdentity(id, home string) error {
	data, err := os.ReadFile(id)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(home, "id_ed25519"), data, 0o600)
}
