package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/starkit"
	"github.com/mno-sh/mno/scenario"
)

func docCommand() *cli.Command {
	return &cli.Command{
		Name:      "doc",
		Usage:     "print the reference of the Starlark builtins",
		ArgsUsage: "[MODULE]",
		Description: "Without MODULE, prints every module. MODULE is a module (ssh, kube, template, …) or a\n" +
			"predeclared name (parallel, secret, …). The text is the builtin packages' own Go documentation.",
		Action: func(c *cli.Context) error {
			// The scenario "module" is the predeclared lab of `mno test` files.
			mods := append(engine.Modules(), scenario.Module())
			if c.NArg() == 0 {
				for i, m := range mods {
					if i > 0 {
						fmt.Fprintln(c.App.Writer)
					}
					printModule(c, m)
				}
				return nil
			}
			want := c.Args().First()
			for _, m := range mods {
				if m.Name == want || m.Globals.Has(want) {
					printModule(c, m)
					return nil
				}
			}
			var names []string
			for _, m := range mods {
				names = append(names, m.Name)
				names = append(names, m.Globals.Keys()...)
			}
			sort.Strings(names)
			return cli.Exit(fmt.Sprintf("doc: no module or builtin %q (have: %s)", want, strings.Join(names, ", ")), 1)
		},
	}
}

func printModule(c *cli.Context, m starkit.Module) {
	fmt.Fprintf(c.App.Writer, "== %s ==\n%s\n", m.Name, m.Doc)
}
