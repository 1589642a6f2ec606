package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/history"
	"github.com/mno-sh/mno/plan"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a playbook",
		ArgsUsage: "PLAYBOOK [key=value ...]",
		Description: "PLAYBOOK is a path to a .star file, or the name of a playbook in the workspace's playbooks/\n" +
			"or embedded in mno (add-vps, add-worker, add-laptop, remove-node, sync, adopt, hello, publish, unpublish,\n" +
			"domain, discover). A path that is not\n" +
			"on disk (playbooks/sync.star, sync.star) is taken as the name it ends in; the header says so.\n" +
			"Each key=value binds a parameter of the playbook's main(ctx, ...); key:=JSON passes JSON. A first\n" +
			"argument without '=' is the value of main's first parameter (mno run domain add name=example.com).",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "change nothing; show the exact diff of every file and ConfigMap a real run would change"},
			&cli.BoolFlag{Name: "check", Usage: "report drift only: a dry run that exits 2 when a node was changed since its last sync although the cluster's state was not (for a monitoring timer)"},
			&cli.BoolFlag{Name: "diff", Usage: "show diffs of real changes too"},
			&cli.StringFlag{Name: "plan-out", Usage: "dry run that saves its exact effects to `FILE` for `mno apply FILE` (no secrets in it)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also report reads"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "`FORMAT`: text, or json for a JSONL event stream on stdout"},
			&cli.DurationFlag{Name: "timeout", Usage: "cancel the run after `DURATION` (e.g. 10m)"},
			&cli.Uint64Flag{Name: "max-steps", Value: engine.DefaultMaxSteps, Usage: "Starlark step budget per thread"},
		}, connectionFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return cli.Exit("run: missing PLAYBOOK (try `mno run hello`)", 1)
			}
			out := c.String("output")
			if out != "text" && out != "json" {
				return cli.Exit(fmt.Sprintf("run: --output must be text or json, not %q", out), 1)
			}
			o := engine.Options{
				Playbook:  c.Args().First(),
				Params:    c.Args().Tail(),
				DryRun:    c.Bool("dry-run") || c.Bool("check"),
				ShowDiff:  c.Bool("diff"),
				Verbose:   c.Bool("verbose"),
				JSON:      out == "json",
				Timeout:   c.Duration("timeout"),
				MaxSteps:  c.Uint64("max-steps"),
				Root:      c.String("root"),
				AllowRead: c.StringSlice("allow-read"),
				Config:    configFrom(c),
				Embedded:  mno.Files,
				Stdout:    c.App.Writer,
				Stderr:    c.App.ErrWriter,
			}
			renewIdentity(o.Config, time.Now(), c.App.ErrWriter)
			if out := c.String("plan-out"); out != "" {
				return savePlan(c, o, out)
			}
			res, _, _ := history.Run(c.Context, o, history.Options{})
			if res.Exit != 0 {
				return exitError{res.Exit}
			}
			if c.Bool("check") && len(res.Drift) > 0 {
				fmt.Fprintf(c.App.ErrWriter, "check: drift on %s\n", driftSummary(res.Drift))
				return exitError{engine.ExitTargetFail}
			}
			return nil
		},
	}
}

// driftSummary names each drifted node with its files.
func driftSummary(d map[string][]string) string {
	var parts []string
	for node, files := range d {
		parts = append(parts, node+" ("+strings.Join(files, ", ")+")")
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// savePlan runs o in dry-run and writes its plan to path.
func savePlan(c *cli.Context, o engine.Options, path string) error {
	if c.Bool("check") {
		return cli.Exit("run: --plan-out and --check do not go together", 1)
	}
	// apply may run from another directory: paths made absolute.
	if _, err := os.Stat(o.Playbook); err == nil && strings.ContainsRune(o.Playbook, '/') {
		o.Playbook, _ = filepath.Abs(o.Playbook)
	}
	if o.Root != "" {
		o.Root, _ = filepath.Abs(o.Root)
	}
	key, err := plan.Key(o.Config.Home, true)
	if err != nil {
		return cli.Exit("run: the plan key: "+err.Error(), 1)
	}
	p, res, err := plan.Make(c.Context, o, versionString(), key)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "run: %v\n", err)
		return exitError{max(res.Exit, 1)}
	}
	if err := plan.Write(path, p); err != nil {
		return cli.Exit("run: writing the plan: "+err.Error(), 1)
	}
	fmt.Fprintf(c.App.ErrWriter, "plan: %d effect(s) saved to %s; `mno apply %s` performs exactly them\n", len(p.Effects), path, path)
	return nil
}

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "perform exactly the effects of a plan saved by `mno run --plan-out FILE`",
		ArgsUsage: "FILE",
		Description: "The playbook is first run again in dry-run: if any planned effect's precondition no longer holds\n" +
			"(the remote file or ConfigMap changed since), its change differs, it no longer happens or a new one\n" +
			"appears, the plan is refused whole, naming each, and nothing is changed. Otherwise the playbook runs\n" +
			"for real and only the planned writes are let through.",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "diff", Usage: "show diffs of real changes too"},
			&cli.DurationFlag{Name: "timeout", Usage: "cancel the run after `DURATION` (e.g. 10m)"},
		}, connectionFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("apply: want one plan FILE (written by mno run --plan-out FILE)", 1)
			}
			p, err := plan.Read(c.Args().First())
			if err != nil {
				return cli.Exit("apply: "+err.Error(), 1)
			}
			cfg := configFrom(c)
			key, err := plan.Key(cfg.Home, false)
			if err != nil && p.SecretsHMAC != "" {
				return cli.Exit("apply: the plan key: "+err.Error(), 1)
			}
			o := engine.Options{ShowDiff: c.Bool("diff"), Timeout: c.Duration("timeout"), Config: cfg, Embedded: mno.Files,
				Stdout: c.App.Writer, Stderr: c.App.ErrWriter}
			renewIdentity(cfg, time.Now(), c.App.ErrWriter)
			if err := plan.Check(c.Context, p, o, versionString(), key); err != nil {
				return cli.Exit("apply: "+err.Error(), 1)
			}
			res, _, _ := history.Run(c.Context, p.Options(o), history.Options{})
			if res.Exit != 0 {
				return exitError{res.Exit}
			}
			return nil
		},
	}
}
