package scenario

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/bootstrap"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/diag"
	"github.com/mno-sh/mno/lab"
)

//go:embed doc.go
var docSrc []byte

// User is the login user mno test bootstraps on every node (lab.user).
const User = "mno"

// Case names of the two passes over PLAYBOOKS; the others are test_ functions.
const (
	CaseFirstRun  = "first run"
	CaseSecondRun = "second run changes nothing"
)

// Options configure Run.
type Options struct {
	// Exe is an mno binary, for the lab (see lab.Options).
	Exe string
	// Embedded holds the stock playbooks and roles.
	Embedded fs.FS
	// VPS, Workers and Laptops size each lab.
	VPS, Workers, Laptops int
	// Reuse names a lab to run every scenario in (started if it is not up,
	// left up afterwards); its ConfigMaps are reset before each scenario but
	// its nodes keep their files. "" starts a fresh lab per scenario.
	Reuse string
	// Run selects the test_ functions to run by name (nil: all).
	Run *regexp.Regexp
	// Progress gets a line per step (lab up, runs); nil discards them.
	Progress io.Writer
	// NoBuild fails instead of building missing helper binaries.
	NoBuild bool
	// Timeout bounds each playbook run and each test function (default 5m).
	Timeout time.Duration
}

// Case is one step of a scenario: a pass over its playbooks, or a test_ function.
type Case struct {
	Name     string
	Duration time.Duration
	// Failure says why it failed; "" when it passed.
	Failure string
	// Skipped: an earlier step failed, so it did not run.
	Skipped bool
}

// Result is the outcome of one scenario.
type Result struct {
	Scenario
	Started  time.Time
	Duration time.Duration
	Cases    []Case
	// Output holds the playbooks' reports and the tests' output.
	Output string
}

// Failed reports whether any case failed.
func (r Result) Failed() bool {
	for _, c := range r.Cases {
		if c.Failure != "" {
			return true
		}
	}
	return false
}

// Failures lists the failure messages, each prefixed with its case.
func (r Result) Failures() []string {
	var out []string
	for _, c := range r.Cases {
		if c.Failure != "" {
			out = append(out, c.Name+": "+c.Failure)
		}
	}
	return out
}

// RunAll runs the scenarios, each in a fresh lab (or o.Reuse's), calling
// report after each. Its error is one that stops everything (no lab can start).
func RunAll(ctx context.Context, scenarios []Scenario, o Options, report func(Result)) ([]Result, error) {
	var results []Result
	var reused *lab.Cluster
	for _, sc := range scenarios {
		started := time.Now()
		res := Result{Scenario: sc, Started: started}
		cl, stop, err := labFor(ctx, o, &reused)
		if err != nil {
			// What stops one lab from starting stops the next ones too.
			return results, fmt.Errorf("%s: starting a lab: %w", sc.Name, err)
		}
		runScenario(ctx, sc, o, cl, &res)
		if serr := stop(); serr != nil {
			res.Cases = append(res.Cases, Case{Name: "lab down", Failure: serr.Error()})
		}
		res.Duration = time.Since(started)
		results = append(results, res)
		if report != nil {
			report(res)
		}
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}

// labFor returns the lab for the next scenario and what ends it.
func labFor(ctx context.Context, o Options, reused **lab.Cluster) (*lab.Cluster, func() error, error) {
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	lo := lab.Options{VPS: o.VPS, Workers: o.Workers, Laptops: o.Laptops, Exe: o.Exe, Progress: progress, NoBuild: o.NoBuild}
	if lo.VPS+lo.Workers+lo.Laptops == 0 {
		lo.VPS, lo.Workers, lo.Laptops = 1, 1, 1
	}
	if o.Reuse != "" {
		if *reused == nil {
			cl, err := lab.Open(o.Reuse)
			if err == nil && !cl.Running() {
				err = fmt.Errorf("lab %q is not running (mno lab down --name %s, then try again)", o.Reuse, o.Reuse)
			}
			if errors.Is(err, lab.ErrNoLab) {
				fmt.Fprintf(progress, "starting lab %q (it stays up: --reuse)\n", o.Reuse)
				lo.Name = o.Reuse
				cl, err = lab.Up(ctx, lo)
			}
			if err != nil {
				return nil, nil, err
			}
			*reused = cl
		}
		cl := *reused
		if err := cl.ResetCluster(ctx); err != nil {
			return nil, nil, fmt.Errorf("resetting the lab's ConfigMaps: %w", err)
		}
		return cl, func() error { return nil }, nil
	}
	dir, release, err := lab.TempDir()
	if err != nil {
		return nil, nil, err
	}
	lo.Dir = dir
	start := time.Now()
	cl, err := lab.Up(ctx, lo)
	if err != nil {
		release()
		return nil, nil, err
	}
	fmt.Fprintf(progress, "lab up in %s (%s)\n", time.Since(start).Round(10*time.Millisecond), strings.Join(cl.NodeNames(), ", "))
	return cl, func() error {
		defer release()
		return cl.Stop()
	}, nil
}

// run is one entry of PLAYBOOKS.
type run struct {
	playbook string
	params   []string
}

func (r run) String() string {
	return strings.TrimSpace(r.playbook + " " + strings.Join(r.params, " "))
}

func runScenario(ctx context.Context, sc Scenario, o Options, cl *lab.Cluster, res *Result) {
	var out bytes.Buffer
	defer func() { res.Output = out.String() }()
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	step := func(name string, f func() string) bool {
		start := time.Now()
		fail := f()
		res.Cases = append(res.Cases, Case{Name: name, Duration: time.Since(start), Failure: fail})
		return fail == ""
	}
	skip := func(names ...string) {
		for _, n := range names {
			res.Cases = append(res.Cases, Case{Name: n, Skipped: true})
		}
	}
	labValue := Value(cl, User)
	var runs []run
	var tests []string
	if !step("setup", func() string {
		if err := bootstrapNodes(ctx, cl, &out); err != nil {
			return err.Error()
		}
		var err error
		runs, tests, err = load(ctx, sc, o, cl, labValue, &out)
		if err != nil {
			return err.Error()
		}
		return ""
	}) {
		return
	}
	var selected []string
	for _, t := range tests {
		if o.Run == nil || o.Run.MatchString(t) {
			selected = append(selected, t)
		}
	}
	for pass, name := range []string{CaseFirstRun, CaseSecondRun} {
		ok := step(name, func() string {
			var fails []string
			for _, r := range runs {
				fmt.Fprintf(progress, "%s: %s: %s\n", sc.Name, name, r)
				fmt.Fprintf(&out, "=== %s: mno run %s\n", name, r)
				fails = append(fails, runPlaybook(ctx, sc, o, cl, r, pass == 1, &out)...)
				if pass == 0 && len(fails) > 0 {
					break
				}
			}
			return strings.Join(fails, "\n")
		})
		if !ok && pass == 0 {
			skip(append([]string{CaseSecondRun}, selected...)...)
			return
		}
	}
	for _, t := range selected {
		fmt.Fprintf(progress, "%s: %s\n", sc.Name, t)
		fmt.Fprintf(&out, "=== %s\n", t)
		step(t, func() string { return callTest(ctx, sc, o, cl, labValue, t, &out) })
	}
}

// bootstrapNodes runs the bootstrap line on every node, as an admin pastes it.
func bootstrapNodes(ctx context.Context, cl *lab.Cluster, out io.Writer) error {
	pub, _, err := bootstrap.EnsureIdentity(cl.Home, cl.Identity)
	if err != nil {
		return err
	}
	script, err := bootstrap.Script(User, strings.TrimSpace(pub), cl.Gateway)
	if err != nil {
		return err
	}
	for _, n := range cl.NodeNames() {
		var buf bytes.Buffer
		code, err := cl.Exec(ctx, n, nil, &buf, &buf, nil, "sh", "-c", script)
		if err != nil || code != 0 {
			return fmt.Errorf("bootstrap of %s: exit %d %v:\n%s", n, code, err, buf.String())
		}
		fmt.Fprintf(out, "=== bootstrap %s\n%s", n, buf.String())
	}
	return nil
}

// session opens the scenario file in a session with lab predeclared.
func session(ctx context.Context, sc Scenario, o Options, cl *lab.Cluster, labValue starlark.Value, out io.Writer) (*engine.Session, starlark.StringDict, error) {
	s, src, err := engine.NewSession(ctx, engine.Options{
		Playbook: sc.Path, Root: sc.Root, Config: cl.Config(), Embedded: o.Embedded, Timeout: o.Timeout,
		Globals: starlark.StringDict{Global: labValue}, Stdout: out, Stderr: out,
	})
	if err != nil {
		return nil, nil, err
	}
	globals, err := s.Exec(src)
	if err != nil {
		s.Close()
		return nil, nil, errors.New(strings.TrimRight(diag.Render(err, s.Run.Redactor), "\n"))
	}
	return s, globals, nil
}

// load reads PLAYBOOKS and the names of the test_ functions, in the order
// they are defined.
func load(ctx context.Context, sc Scenario, o Options, cl *lab.Cluster, labValue starlark.Value, out io.Writer) ([]run, []string, error) {
	s, globals, err := session(ctx, sc, o, cl, labValue, out)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	pv, ok := globals["PLAYBOOKS"]
	if !ok {
		return nil, nil, fmt.Errorf("%s: no PLAYBOOKS = [(playbook, {params}), …] defined", sc.Name)
	}
	list, ok := pv.(*starlark.List)
	if !ok {
		return nil, nil, fmt.Errorf("%s: PLAYBOOKS is a %s, want a list of (playbook, {params}) or names", sc.Name, pv.Type())
	}
	var runs []run
	for i := range list.Len() {
		r, err := toRun(sc, list.Index(i))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: PLAYBOOKS[%d]: %v", sc.Name, i, err)
		}
		runs = append(runs, r)
	}
	type fn struct {
		name string
		line int32
	}
	var fns []fn
	for name, v := range globals {
		if f, ok := v.(*starlark.Function); ok && strings.HasPrefix(name, "test_") {
			if f.NumParams() != 0 {
				return nil, nil, fmt.Errorf("%s: %s must take no parameters (the lab is the predeclared lab)", f.Position(), name)
			}
			fns = append(fns, fn{name, f.Position().Line})
		}
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].line < fns[j].line })
	var tests []string
	for _, f := range fns {
		tests = append(tests, f.name)
	}
	return runs, tests, nil
}

// callTest runs one test_ function in a session of its own.
func callTest(ctx context.Context, sc Scenario, o Options, cl *lab.Cluster, labValue starlark.Value, name string, out io.Writer) string {
	s, globals, err := session(ctx, sc, o, cl, labValue, out)
	if err != nil {
		return err.Error()
	}
	defer s.Close()
	if _, err := s.Call(globals[name].(starlark.Callable), nil, nil); err != nil {
		return strings.TrimRight(diag.Render(err, s.Run.Redactor), "\n")
	}
	return ""
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
