package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "copy the embedded playbooks and roles into a workspace to customise them",
		ArgsUsage: "DIR [FILE ...]",
		Description: "Writes the playbooks/ and roles/ embedded in mno (or only the FILEs named, e.g.\n" +
			"roles/traefik.star) into DIR. Files on disk then override the embedded ones for every\n" +
			"`mno run` in that workspace. A file that exists with other content is left alone unless\n" +
			"--force: your edits are never overwritten by accident.",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "overwrite files that differ"}},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return cli.Exit("export: missing DIR", 1)
			}
			dir := c.Args().First()
			want := map[string]bool{}
			for _, f := range c.Args().Tail() {
				f = path.Clean(filepath.ToSlash(f))
				if _, err := fs.Stat(mno.Files, f); err != nil {
					return cli.Exit(fmt.Sprintf("export: %s is not an embedded file (see `mno export DIR` for all)", f), 1)
				}
				want[f] = true
			}
			var kept []string
			err := fs.WalkDir(mno.Files, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || (len(want) > 0 && !want[p]) {
					return err
				}
				data, err := fs.ReadFile(mno.Files, p)
				if err != nil {
					return err
				}
				dst := filepath.Join(dir, filepath.FromSlash(p))
				if old, err := os.ReadFile(dst); err == nil {
					if bytes.Equal(old, data) {
						return nil
					}
					if !c.Bool("force") {
						kept = append(kept, dst)
						return nil
					}
				}
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(dst, data, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", dst)
				return nil
			})
			if err != nil {
				return cli.Exit("export: "+err.Error(), 1)
			}
			if len(kept) > 0 {
				fmt.Fprintf(c.App.ErrWriter, "kept %d file(s) that differ from the embedded copy (--force overwrites): %s\n", len(kept), strings.Join(kept, ", "))
			}
			return nil
		},
	}
}
