package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/engine/starkit"
)

func bootstrapCommand() *cli.Command {
	return &cli.Command{
		Name:  "bootstrap",
		Usage: "print the one-line command that prepares a new node for mno",
		Description: "Prints a POSIX sh command to paste on the new node (as root, or with sudo). It creates the\n" +
			"user if needed, authorises the control plane's public key for it restricted with\n" +
			"from=\"ADDR\", grants passwordless sudo through /etc/sudoers.d (checked with visudo -c), and\n" +
			"prints the node's host key to pass to the add playbook as host_key=. Running it again on\n" +
			"the node changes nothing.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Value: "mno", Usage: "login `USER` to create on the node (root: no sudoers entry)"},
			&cli.StringFlag{Name: "cp-address", Usage: "the control plane's address as the node sees it (`ADDR`, a pattern or CIDR; default: `tailscale ip -4`)"},
			&cli.StringFlag{Name: "identity", Usage: "the control plane's private key `FILE` (default $MNO_IDENTITY, then $MNO_HOME/id_ed25519)", EnvVars: []string{"MNO_IDENTITY"}},
		},
		Action: func(c *cli.Context) error {
			cfg := configFrom(c)
			user := c.String("user")
			if !validUser(user) {
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
			if !validFrom(addr) {
				return cli.Exit(fmt.Sprintf("bootstrap: --cp-address %q is not an address, pattern or CIDR", addr), 1)
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
			fmt.Fprintln(c.App.ErrWriter, "Paste this on the new node (as root, drop the leading sudo):")
			fmt.Fprintln(c.App.Writer, "sudo sh -c "+starkit.ShellQuote(bootstrapScript(user, key, addr)))
			return nil
		},
	}
}

var (
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	fromRE = regexp.MustCompile(`^[0-9A-Za-z.:*?/,!-]+$`)
)

func validUser(u string) bool { return userRE.MatchString(u) }

func validFrom(a string) bool { return fromRE.MatchString(a) && !strings.ContainsAny(a, `"'`) }

// bootstrapScript returns the POSIX sh script run on a new node. Every value
// is quoted; the script is idempotent: the key line, the sudoers file and the
// user are written only when they differ from what is there.
func bootstrapScript(user, key, from string) string {
	q := starkit.ShellQuote
	lines := []string{
		"set -eu",
		"u=" + q(user) + "; k=" + q(key) + "; line=" + q(`from="`+from+`" `+key),
		`if ! id "$u" >/dev/null 2>&1; then if command -v useradd >/dev/null 2>&1; then useradd -m -s /bin/sh "$u"; else adduser -D -s /bin/sh "$u"; fi; fi`,
		`h=$(getent passwd "$u" | cut -d: -f6); g=$(id -gn "$u")`,
		`[ -d "$h/.ssh" ] || install -d -m 700 -o "$u" -g "$g" "$h/.ssh"`,
		`a="$h/.ssh/authorized_keys"`,
		`if ! grep -qxF "$line" "$a" 2>/dev/null; then t=$(mktemp); { grep -vF "$k" "$a" 2>/dev/null || true; printf '%s\n' "$line"; } > "$t"; install -m 600 -o "$u" -g "$g" "$t" "$a"; rm -f "$t"; fi`,
		`if [ "$u" != root ]; then f=/etc/sudoers.d/mno-$u; s="$u ALL=(ALL) NOPASSWD:ALL"; if [ "$(cat "$f" 2>/dev/null)" != "$s" ]; then t=$(mktemp); printf '%s\n' "$s" > "$t"; visudo -cqf "$t"; install -m 440 "$t" "$f"; rm -f "$t"; fi; fi`,
		`echo "mno: $u is ready. Pass this to the add playbook:"`,
		`echo "  host_key=\"$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)\""`,
		`for p in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$p"; done`,
	}
	return strings.Join(lines, "; ")
}
