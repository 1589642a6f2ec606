package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
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
			&cli.BoolFlag{Name: "diff", Usage: "show diffs of real changes too"},
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
			res := engine.Run(c.Context, engine.Options{
				Playbook:  c.Args().First(),
				Params:    c.Args().Tail(),
				DryRun:    c.Bool("dry-run"),
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
			})
			if res.Exit != 0 {
				return exitError{res.Exit}
			}
			return nil
		},
	}
}
