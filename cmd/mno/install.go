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
		Usage: "install mno: systemd units (scheduled sync, the watching controller), or inside the cluster",
		Subcommands: []*cli.Command{{
			Name:  "systemd",
			Usage: "give mno its own cluster identity, then write mno-sync.service, mno-sync.timer and mno-watch.service",
			Description: "Gives mno its own identity in the cluster, with only the rights the stock playbooks need:\n" +
				"applies the ClusterRole and the Roles (kube-system, default) mno:controller\n" +
				"(deploy/rbac/mno.yaml) bound to the user mno:controller, as the cluster admin\n" +
				"(--kubeconfig, $KUBECONFIG, k3s.yaml), and writes\n" +
				"$MNO_HOME/kubeconfig naming a client certificate and key for that user (mno-controller.crt,\n" +
				".key; one year; signed by the cluster's client CA in $MNO_K3S_TLS_DIR, else\n" +
				"/var/lib/rancher/k3s/server/tls). mno run and mno watch renew it after eight months when they\n" +
				"use that kubeconfig and can read the CA; installing again does too. Then writes the units, which use that kubeconfig, with\n" +
				"ExecStart pointing at this mno binary and MNO_HOME at yours, and prints the systemctl\n" +
				"commands to enable one of them: the timer (a sync every 15 minutes) or the watcher (a sync on\n" +
				"every change, plus hourly). Files that are already right are left untouched.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Value: "/etc/systemd/system", Usage: "unit `DIR`"},
				&cli.StringFlag{Name: "bin", Usage: "mno binary `PATH` for ExecStart (default: this binary)"},
				&cli.BoolFlag{Name: "units-only", Usage: "only write the units (the roles and $MNO_HOME/kubeconfig are made elsewhere)"},
				&cli.StringFlag{Name: "kubeconfig", Usage: "the cluster admin's kubeconfig `FILE` (default: $KUBECONFIG, ~/.kube/config, /etc/rancher/k3s/k3s.yaml)"},
				&cli.StringFlag{Name: "context", Usage: "kubeconfig context `NAME`"},
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
		}, installKubernetesCommand(), installImageCommand()},
	}
}

func installKubernetesCommand() *cli.Command {
	return &cli.Command{
		Name:  "kubernetes",
		Usage: "write the manifests that run mno watch inside the cluster (for a control plane of several k3s servers)",
		Description: "Writes one YAML file (0600: it holds the CP's SSH private key) with: the namespace, the\n" +
			"ServiceAccount mno, mno's ClusterRole and Roles (deploy/rbac/mno.yaml) bound to it, the Secret\n" +
			"mno-ssh ($MNO_HOME/id_ed25519 and known_hosts), the ConfigMap mno-workspace (the .star files\n" +
			"of --workspace's playbooks/ and roles/, so custom roles work in the cluster) and a Deployment\n" +
			"of `mno watch sync` with two replicas on the k3s servers (a Lease elects the leader; the\n" +
			"client CA for laptop certificates is read from the server's /var/lib/rancher/k3s/server/tls).\n" +
			"Laptop enrolments need no Secret: they are the ClusterRoleBindings mno-laptop-NAME. Apply it\n" +
			"with kubectl apply -f FILE after importing the image (mno install image).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Value: "mno-kubernetes.yaml", Usage: "manifest `FILE` to write"},
			&cli.StringFlag{Name: "namespace", Value: "mno", Usage: "`NS` for the ServiceAccount, Secret, ConfigMap and Deployment"},
			&cli.StringFlag{Name: "image", Value: "localhost/mno:latest", Usage: "the image `REF` (what mno install image names it)"},
			&cli.StringFlag{Name: "workspace", Usage: "workspace `DIR` whose playbooks/ and roles/ go into the ConfigMap (default: none)"},
		},
		Action: func(c *cli.Context) error {
			ns, image := c.String("namespace"), c.String("image")
			if !dnsLabel(ns) {
				return cli.Exit(fmt.Sprintf("install kubernetes: --namespace %q is not a DNS label (a-z, 0-9, '-', at most 63)", ns), 1)
			}
			if image == "" || len(image) > 255 || strings.ContainsAny(image, " \t\r\n\"'\\") {
				return cli.Exit(fmt.Sprintf("install kubernetes: --image %q is not an image reference", image), 1)
			}
			if err := writeManifests(c.String("out"), configFrom(c).Home, c.String("workspace"), ns, image); err != nil {
				return cli.Exit("install kubernetes: "+err.Error(), 1)
			}
			fmt.Fprintf(c.App.ErrWriter, "wrote %s (0600: it holds the SSH private key)\n", c.String("out"))
			fmt.Fprintf(c.App.Writer, "kubectl apply --server-side -f %s\n", c.String("out"))
			return nil
		},
	}
}

func installImageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "write an OCI image archive of this mno binary (no registry needed: k3s ctr images import FILE)",
		Description: "Writes an OCI image layout archive whose one layer holds this binary as /usr/local/bin/mno\n" +
			"(entrypoint), with the dynamic loader and libraries it needs when it is not static, named\n" +
			"--ref. Import it on every k3s server: k3s ctr images import FILE.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Value: "mno-image.tar", Usage: "archive `FILE` to write"},
			&cli.StringFlag{Name: "ref", Value: "localhost/mno:latest", Usage: "image `REF` recorded in the archive"},
			&cli.StringFlag{Name: "bin", Usage: "mno binary `PATH` (default: this binary)"},
		},
		Action: func(c *cli.Context) error {
			bin := c.String("bin")
			if bin == "" {
				exe, err := os.Executable()
				if err != nil {
					return cli.Exit("install image: "+err.Error(), 1)
				}
				bin = exe
			}
			ref := c.String("ref")
			if ref == "" || len(ref) > 255 || strings.ContainsAny(ref, " \t\r\n\"'\\") {
				return cli.Exit(fmt.Sprintf("install image: --ref %q is not an image reference", ref), 1)
			}
			out := c.String("out")
			tmp := out + ".mno-tmp"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
			if err != nil {
				return cli.Exit("install image: "+err.Error(), 1)
			}
			err = writeImage(f, bin, ref)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp, out)
			}
			if err != nil {
				os.Remove(tmp)
				return cli.Exit("install image: "+err.Error(), 1)
			}
			fmt.Fprintf(c.App.ErrWriter, "wrote %s (%s)\n", out, ref)
			fmt.Fprintf(c.App.Writer, "k3s ctr images import %s\n", out)
			return nil
		},
	}
}

// dnsLabel reports whether s is an RFC 1123 label, as namespace names are.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
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
