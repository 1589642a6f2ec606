package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "set up this control plane: $MNO_HOME, its SSH identity, the cluster's ConfigMaps",
		Description: "Creates $MNO_HOME (0700) and the control plane's ed25519 identity (0600) if missing, then\n" +
			"creates whichever of the four ConfigMaps (sync-controller-registry, service-registry,\n" +
			"domain-registry, cluster-info) are missing, leaving existing MyNodeOne data untouched.\n" +
			"Prints the public key. Safe to run again.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "cluster-name", Value: "mno", Usage: "cluster-info cluster-name for a new cluster"},
			&cli.StringFlag{Name: "cluster-domain", Usage: "cluster-info cluster-domain (without .local; default: the cluster name)"},
			&cli.StringFlag{Name: "cp-address", Usage: "the control plane's Tailscale `ADDR` (default: `tailscale ip -4`)"},
			&cli.BoolFlag{Name: "no-cluster", Usage: "only create $MNO_HOME and the identity"},
		}, connectionFlags()...),
		Action: func(c *cli.Context) error {
			cfg := configFrom(c)
			pub, created, err := ensureIdentity(cfg.Home, cfg.Identity)
			if err != nil {
				return cli.Exit("init: "+err.Error(), 1)
			}
			if created {
				fmt.Fprintf(c.App.ErrWriter, "created the control plane identity %s\n", cfg.Identity)
			} else {
				fmt.Fprintf(c.App.ErrWriter, "using the existing identity %s\n", cfg.Identity)
			}
			if !c.Bool("no-cluster") {
				res := engine.Run(c.Context, engine.Options{
					Playbook: "init",
					Params: []string{
						"cluster_name=" + c.String("cluster-name"),
						"cluster_domain=" + c.String("cluster-domain"),
						"control_plane_ip=" + c.String("cp-address"),
					},
					Config:   cfg,
					Root:     c.String("root"),
					Embedded: mno.Files,
					Stdout:   c.App.ErrWriter,
					Stderr:   c.App.ErrWriter,
				})
				if res.Exit != 0 {
					return exitError{res.Exit}
				}
			}
			fmt.Fprint(c.App.Writer, pub)
			return nil
		},
	}
}

// ensureIdentity creates home (0700) and an ed25519 key pair at identity
// (0600) unless the key exists; it returns the public key line.
func ensureIdentity(home, identity string) (pub string, created bool, err error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", false, err
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return "", false, err
	}
	if data, err := os.ReadFile(identity); err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return "", false, fmt.Errorf("%s exists but is not a usable private key: %v", identity, err)
		}
		if fi, err := os.Stat(identity); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s is readable by others (mode %o); chmod 600 it", identity, fi.Mode().Perm())
		}
		return string(ssh.MarshalAuthorizedKey(signer.PublicKey())), false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", false, err
	}
	host, _ := os.Hostname()
	comment := "mno@" + host
	block, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(identity), 0o700); err != nil {
		return "", false, err
	}
	if err := writeNew(identity, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", false, err
	}
	sshPub, err := ssh.NewPublicKey(pk)
	if err != nil {
		return "", false, err
	}
	line := string(ssh.MarshalAuthorizedKey(sshPub))
	line = line[:len(line)-1] + " " + comment + "\n"
	if err := writeNew(identity+".pub", []byte(line), 0o644); err != nil {
		return "", false, err
	}
	return line, true, nil
}

// writeNew writes a file that must not exist yet (O_EXCL), so a concurrent
// init never overwrites a key another one just made.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
