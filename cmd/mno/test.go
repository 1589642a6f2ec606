package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine/loader"
	"github.com/mno-sh/mno/lab"
	"github.com/mno-sh/mno/scenario"
)

func testCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run scenario tests (*_test.star) against fresh labs: playbooks twice, then checks",
		ArgsUsage: "[DIR|FILE]",
		Description: "Finds the scenarios (NAME_test.star files, next to the playbooks and roles they test) in DIR\n" +
			"(default: the workspace, else the scenarios embedded in mno), and for each starts a fresh lab\n" +
			"(see mno lab), bootstraps its nodes, runs the scenario's PLAYBOOKS twice — the second run must\n" +
			"change nothing — then its test_ functions. One line per scenario; exit 1 if any fails.\n" +
			"`mno doc scenario` describes the file format. Needs root, like mno lab.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "junit", Usage: "also write a JUnit XML report to `FILE`"},
			&cli.BoolFlag{Name: "reuse", Usage: "run every scenario in one lab (--name), started if needed and left up; ConfigMaps are reset, nodes are not"},
			&cli.StringFlag{Name: "name", Value: "test", Usage: "the lab `NAME` --reuse uses"},
			&cli.StringFlag{Name: "run", Usage: "run only the test_ functions matching `REGEXP` (the playbooks always run)"},
			&cli.IntFlag{Name: "vps", Value: 1, Usage: "VPS nodes per lab"},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "workers per lab"},
			&cli.IntFlag{Name: "laptops", Value: 1, Usage: "laptops per lab"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every step and, for passing scenarios too, the playbooks' reports"},
		},
		Action: func(c *cli.Context) error {
			errOut := c.App.ErrWriter
			// First: without root nothing else can work, and a user who is not
			// root may not even read a checkout under /root.
			if err := lab.CheckPrivileges(); err != nil {
				return cli.Exit("test: "+err.Error(), 1)
			}
			target := c.Args().First()
			if target == "" {
				root, err := loader.DiscoverRoot(".")
				if err != nil {
					return cli.Exit("test: "+err.Error(), 1)
				}
				target = root
			}
			scenarios, err := scenario.Find(target, mno.Files)
			if err != nil {
				return cli.Exit("test: "+err.Error(), 1)
			}
			where := target
			if where == "" {
				where = "the scenarios embedded in mno"
			}
			if len(scenarios) == 0 {
				return cli.Exit(fmt.Sprintf("test: no scenarios (*_test.star) in %s", where), 1)
			}
			var runRE *regexp.Regexp
			if s := c.String("run"); s != "" {
				if runRE, err = regexp.Compile(s); err != nil {
					return cli.Exit("test: --run: "+err.Error(), 1)
				}
			}
			exe, err := os.Executable()
			if err != nil {
				return cli.Exit("test: cannot find the mno binary: "+err.Error(), 1)
			}
			o := scenario.Options{Exe: exe, Embedded: mno.Files, VPS: c.Int("vps"), Workers: c.Int("workers"),
				Laptops: c.Int("laptops"), Run: runRE, Progress: &prefixWriter{w: errOut, p: "mno test: "}}
			if !c.Bool("verbose") {
				o.Progress = quietProgress{&prefixWriter{w: errOut, p: "mno test: "}}
			}
			if c.Bool("reuse") {
				o.Reuse = c.String("name")
			}
			start := time.Now()
			failed := 0
			results, err := scenario.RunAll(c.Context, scenarios, o, func(r scenario.Result) {
				printResult(c, r)
				if r.Failed() {
					failed++
				}
			})
			if path := c.String("junit"); path != "" && len(results) > 0 {
				if werr := writeJUnit(path, results); werr != nil {
					fmt.Fprintf(errOut, "test: --junit: %v\n", werr)
					failed++
				}
			}
			if err != nil {
				return cli.Exit("test: "+err.Error(), 1)
			}
			elapsed := time.Since(start).Round(100 * time.Millisecond)
			if failed > 0 {
				fmt.Fprintf(c.App.Writer, "FAIL: %d of %d scenario(s) failed (%s)\n", failed, len(results), elapsed)
				return exitError{1}
			}
			fmt.Fprintf(c.App.Writer, "ok: %d scenario(s) passed (%s)\n", len(results), elapsed)
			return nil
		},
	}
}

// printResult prints one line per scenario, with its failures (and the
// playbooks' reports) below a failed one.
func printResult(c *cli.Context, r scenario.Result) {
	out := c.App.Writer
	status, tests := "ok  ", 0
	for _, cs := range r.Cases {
		if strings.HasPrefix(cs.Name, "test_") {
			tests++
		}
	}
	if r.Failed() {
		status = "FAIL"
	}
	fmt.Fprintf(out, "%s  %s  %s (%d test(s))\n", status, r.Name, r.Duration.Round(100*time.Millisecond), tests)
	for _, f := range r.Failures() {
		fmt.Fprintf(out, "    %s\n", strings.ReplaceAll(f, "\n", "\n    "))
	}
	if (r.Failed() || c.Bool("verbose")) && r.Output != "" {
		fmt.Fprintf(c.App.ErrWriter, "--- output of %s:\n%s", r.Name, r.Output)
	}
}

func writeJUnit(path string, results []scenario.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = scenario.WriteJUnit(f, results)
	return errors.Join(err, f.Close())
}

// quietProgress passes on only the lines worth seeing without --verbose:
// building the helper binaries, which takes minutes the first time.
type quietProgress struct{ w *prefixWriter }

func (q quietProgress) Write(b []byte) (int, error) {
	s := string(b)
	if strings.Contains(s, "build") || strings.Contains(s, "go: downloading") {
		return q.w.Write(b)
	}
	return len(b), nil
}
