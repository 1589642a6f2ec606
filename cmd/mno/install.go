package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno/deploy/systemd"
)

func installCommand() *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "install mno's systemd units (scheduled sync and the watching controller)",
		Subcommands: []*cli.Command{{
			Name:  "systemd",
			Usage: "write mno-sync.service, mno-sync.timer and mno-watch.service",
			Description: "Gives mno its own identity in the cluster, with only the rights the stock playbooks need:\n" +
				"applies the ClusterRole and Role mno:controller (deploy/rbac/mno.yaml) bound to the user\n" +
				"mno:controller, as the cluster admin (--kubeconfig, $KUBECONFIG, k3s.yaml), and writes\n" +
				"$MNO_HOME/kubeconfig with a client certificate for that user (one year; signed by the\n" +
				"cluster's client CA in $MNO_K3S_TLS_DIR, else /var/lib/rancher/k3s/server/tls; installing\n" +
				"again renews it after eight months). Then writes the units, which use that kubeconfig, with\n" +
				"ExecStart pointing at this mno binary and MNO_HOME at yours, and prints the systemctl\n" +
				"commands to enable one of them: the timer (a sync every 15 minutes) or the watcher (a sync on\n" +
				"every change, plus hourly). Files that are already right are left untouched.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Value: "/etc/systemd/system", Usage: "unit `DIR`"},
				&cli.StringFlag{Name: "bin", Usage: "mno binary `PATH` for ExecStart (default: this binary)"},
				&cli.BoolFlag{Name: "units-only", Usage: "only write the units (the roles and $MNO_HOME/kubeconfig are made elsewhere)"},
			},
			Action: func(c *cli.Context) error {
				bin := c.String("bin")
				if bin == "" {
					exe, err := os.Executable()
					if err != nil {
						return cli.Exit("install: "+err.Error(), 1)
					}
					bin = exe
				}
				abs, err := filepath.Abs(bin)
				if err == nil {
					err = checkUnitPath(abs)
				}
				if err != nil {
					return cli.Exit(fmt.Sprintf("install: --bin %q must be an absolute path without spaces or quotes: it %v", bin, err), 1)
				}
				home := configFrom(c).Home
				if err := checkUnitPath(home); err != nil {
					return cli.Exit(fmt.Sprintf("install: MNO_HOME %q %v; the units would write it into Environment= and ReadWritePaths=", home, err), 1)
				}
				if !c.Bool("units-only") {
					if _, err := installIdentity(c.Context, configFrom(c), c.App.ErrWriter); err != nil {
						return cli.Exit("install: "+err.Error(), 1)
					}
				}
				changed, err := installUnits(c.String("dir"), abs, home)
				if err != nil {
					return cli.Exit("install: "+err.Error(), 1)
				}
				for _, f := range changed {
					fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", f)
				}
				if len(changed) == 0 {
					fmt.Fprintln(c.App.ErrWriter, "units are up to date")
				}
				fmt.Fprintf(c.App.Writer, "systemctl daemon-reload\n"+
					"systemctl enable --now mno-watch.service   # sync on every change (or:)\n"+
					"systemctl enable --now mno-sync.timer      # sync every 15 minutes\n")
				return nil
			},
		}},
	}
}

// checkUnitPath checks a path that goes into a systemd unit as it is: an
// absolute path with no whitespace, quotes, backslash, '%' (a specifier), '$'
// or control characters, any of which systemd would parse (a newline adds a
// directive; a space splits ReadWritePaths= silently).
func checkUnitPath(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("is not an absolute path")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" \"'\\%$;", r) || unicode.IsSpace(r) {
			return fmt.Errorf("contains %q (no whitespace, quotes, backslash, %%, $, ; or control characters)", r)
		}
	}
	return nil
}

// installUnits writes the embedded units into dir with ExecStart using bin
// and MNO_HOME set to home; it returns the files it changed.
func installUnits(dir, bin, home string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	names, err := fs.Glob(systemd.Units, "*")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var changed []string
	for _, n := range names {
		data, err := fs.ReadFile(systemd.Units, n)
		if err != nil {
			return nil, err
		}
		text := strings.ReplaceAll(string(data), "/usr/local/bin/mno", bin)
		text = strings.ReplaceAll(text, "/root/.mno", home)
		p := filepath.Join(dir, n)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, []byte(text)) {
			continue
		}
		tmp := p + ".mno-tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		changed = append(changed, p)
	}
	return changed, nil
}
