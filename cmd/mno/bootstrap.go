package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/bootstrap"
)

func bootstrapCommand() *cli.Command {
	return &cli.Command{
		Name:  "bootstrap",
		Usage: "print the one-line command that prepares a new node for mno",
		Description: "Prints a POSIX sh command to paste on the new node (as root, or with sudo). It creates the\n" +
			"user if needed, authorises the control plane's public key for it restricted with\n" +
			"from=\"ADDR\", grants passwordless sudo through /etc/sudoers.d (checked with visudo -c) — for a\n" +
			"laptop's user, --sudo laptop grants only what the laptop role runs as root — and\n" +
			"prints the node's host key to pass to the add playbook as host_key=. Running it again on\n" +
			"the node changes nothing.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Value: "mno", Usage: "login `USER` to create on the node (root: no sudoers entry)"},
			&cli.StringFlag{Name: "cp-address", Usage: "the control plane's address as the node sees it (`ADDR`: an IP address or CIDR, comma-separated; default: `tailscale ip -4`)"},
			&cli.StringFlag{Name: "sudo", Value: bootstrap.SudoAll, Usage: "`RULE` to grant the user: all (passwordless sudo, for a VPS or worker), " +
				"laptop (only mno's /etc/hosts helper as root: all add-laptop and sync need on a person's laptop), or none"},
			&cli.StringFlag{Name: "identity", Usage: "the control plane's private key `FILE` (default $MNO_IDENTITY, then $MNO_HOME/id_ed25519)", EnvVars: []string{"MNO_IDENTITY"}},
		},
		Action: func(c *cli.Context) error {
			cfg := configFrom(c)
			user := c.String("user")
			if !bootstrap.ValidUser(user) {
				return cli.Exit(fmt.Sprintf("bootstrap: --user %q is not a valid user name", user), 1)
			}
			addr := c.String("cp-address")
			if addr == "" {
				out, err := exec.CommandContext(c.Context, "tailscale", "ip", "-4").Output()
				if err == nil {
					addr = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
				}
				if addr == "" {
					return cli.Exit("bootstrap: cannot tell the control plane's address (no tailscale here): pass --cp-address ADDR, the address nodes see the control plane connect from", 1)
				}
			}
			if err := bootstrap.CheckFrom(addr); err != nil {
				return cli.Exit(fmt.Sprintf("bootstrap: --cp-address: %v: pass the control plane's IP address (or a CIDR, or several separated by commas) as the node sees it", err), 1)
			}
			data, err := os.ReadFile(cfg.Identity)
			if err != nil {
				return cli.Exit(fmt.Sprintf("bootstrap: cannot read the control plane identity %s (run `mno init` first): %v", cfg.Identity, err), 1)
			}
			signer, err := ssh.ParsePrivateKey(data)
			if err != nil {
				return cli.Exit(fmt.Sprintf("bootstrap: %s: %v", cfg.Identity, err), 1)
			}
			key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
			rule := c.String("sudo")
			line, err := bootstrap.Command(bootstrap.Options{User: user, Key: key, From: addr, Sudo: rule})
			if err != nil {
				return cli.Exit("bootstrap: "+err.Error(), 1)
			}
			if user != "root" {
				fmt.Fprintf(c.App.ErrWriter, "sudo for %s on the node: %s (--sudo %s)\n", user, bootstrap.Describe(rule), rule)
			}
			fmt.Fprintln(c.App.ErrWriter, "Paste this on the new node (as root, drop the leading sudo):")
			fmt.Fprintln(c.App.Writer, line)
			return nil
		},
	}
}
