package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "check playbooks and roles without running them",
		ArgsUsage: "FILE...",
		Description: "Parses and resolves each file and everything it loads: syntax errors, undefined names,\n" +
			"missing loads, load cycles, and playbooks without main. Nothing is executed.",
		Flags: []cli.Flag{rootFlag(), allowReadFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.Exit("check: missing FILE", 1)
			}
			problems := engine.Check(c.String("root"), mno.Files, c.Args().Slice(), c.StringSlice("allow-read")...)
			for _, p := range problems {
				fmt.Fprintln(c.App.ErrWriter, p)
			}
			if len(problems) > 0 {
				fmt.Fprintf(c.App.ErrWriter, "%d problem(s)\n", len(problems))
				return exitError{1}
			}
			fmt.Fprintf(c.App.Writer, "ok: %d file(s) checked\n", c.NArg())
			return nil
		},
	}
}
