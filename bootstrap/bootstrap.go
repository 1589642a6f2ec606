// Package bootstrap writes the one-line command that prepares a new node for
// mno: the only thing ever run on a node by hand.
package bootstrap

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"

	"github.com/mno-sh/mno/internal/shellquote"

	"github.com/mno-sh/mno/builtins/ssh"
)

// Compiled on first use, not at every start of mno.
var userRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`) })

// ValidUser reports whether u is a portable login name.
func ValidUser(u string) bool { return userRE().MatchString(u) }

// ValidFrom reports whether a is usable in an authorized_keys from="…"
// option as mno writes it: IP addresses and CIDRs (comma-separated), each
// parsed — no host patterns, so "*" or "?*" (which restrict nothing) and
// names (which the node would resolve) never get in.
func ValidFrom(a string) bool { return CheckFrom(a) == nil }

// CheckFrom is ValidFrom with the reason.
func CheckFrom(a string) error {
	if a == "" {
		return fmt.Errorf("empty address")
	}
	for _, part := range strings.Split(a, ",") {
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return fmt.Errorf("%q is not an IP address or CIDR", part)
			}
			if p.Bits() == 0 {
				return fmt.Errorf("%q allows every address, which restricts nothing", part)
			}
			if p.Masked() != p {
				return fmt.Errorf("%q has host bits set (did you mean %s?)", part, p.Masked())
			}
			continue
		}
		ip, err := netip.ParseAddr(part)
		if err != nil || ip.Zone() != "" {
			return fmt.Errorf("%q is not an IP address or CIDR", part)
		}
		if ip.IsUnspecified() {
			return fmt.Errorf("%q is not a usable address", part)
		}
	}
	return nil
}

// Sudo rules the bootstrap can grant the login user.
const (
	// SudoAll is passwordless sudo for everything: what a VPS or worker's
	// service user needs (packages, Docker, k3s, firewall).
	SudoAll = "all"
	// SudoLaptop lets the user run only the ssh builtin's /etc/hosts helper
	// as root: all the laptop role needs (a laptop's user is a person).
	SudoLaptop = "laptop"
	// SudoNone grants nothing (and removes a rule mno granted before).
	SudoNone = "none"
)

// Options say what the bootstrap sets up.
type Options struct {
	User, Key, From string
	Sudo            string // SudoAll (default), SudoLaptop or SudoNone
}

// Script returns the POSIX sh script for a new node with passwordless sudo
// for everything (Options.Sudo = SudoAll); see ScriptFor.
func Script(user, key, from string) (string, error) {
	return ScriptFor(Options{User: user, Key: key, From: from})
}

// SudoRule is the sudoers line the bootstrap writes for user and rule, ""
// for none.
func SudoRule(user, rule string) string {
	switch rule {
	case SudoLaptop:
		return user + ` ALL=(root) NOPASSWD: ` + ssh.HostsHelperPath + ` ""`
	case SudoNone:
		return ""
	}
	return user + " ALL=(ALL) NOPASSWD:ALL"
}

// Describe says in words which sudo rule is in force.
func Describe(rule string) string {
	switch rule {
	case SudoLaptop:
		return "the laptop rule: only " + ssh.HostsHelperPath + " (edits /etc/hosts) as root, no password"
	case SudoNone:
		return "none"
	}
	return "passwordless, for every command"
}

// ScriptFor returns the POSIX sh script for a new node. It creates the user
// if needed, authorises key for it restricted with from="from", grants the
// sudo rule chosen through /etc/sudoers.d/mno-USER (validated with visudo
// -c; for the laptop rule it also installs the /etc/hosts helper), and
// prints the node's host key and the rule in force. Every value is quoted,
// and each file is written only when it differs, so running it twice changes
// nothing.
func ScriptFor(o Options) (string, error) {
	user, key, from := o.User, o.Key, o.From
	if o.Sudo == "" {
		o.Sudo = SudoAll
	}
	if o.Sudo != SudoAll && o.Sudo != SudoLaptop && o.Sudo != SudoNone {
		return "", fmt.Errorf("--sudo %q: want all, laptop or none", o.Sudo)
	}
	if !ValidUser(user) {
		return "", fmt.Errorf("%q is not a valid user name", user)
	}
	if err := CheckFrom(from); err != nil {
		return "", fmt.Errorf("--cp-address: %v", err)
	}
	if !strings.HasPrefix(key, "ssh-") || strings.ContainsAny(key, "\n\"") {
		return "", fmt.Errorf("%q is not a public key line", key)
	}
	q := shellquote.Quote
	lines := []string{
		"set -eu",
		"u=" + q(user) + "; k=" + q(key) + "; line=" + q(`from="`+from+`" `+key),
		// A new user's password is "*": no password works, but unlike useradd's
		// default "!" the account is not locked, which sshd without PAM refuses.
		`if ! id "$u" >/dev/null 2>&1; then if command -v useradd >/dev/null 2>&1; then useradd -m -s /bin/sh -p '*' "$u"; else adduser -D -s /bin/sh "$u"; sed -i "s/^$u:!:/$u:*:/" /etc/shadow; fi; fi`,
		`h=$(getent passwd "$u" | cut -d: -f6); g=$(id -gn "$u")`,
		`[ -d "$h/.ssh" ] || install -d -m 700 -o "$u" -g "$g" "$h/.ssh"`,
		`a="$h/.ssh/authorized_keys"`,
		`if ! grep -qxF "$line" "$a" 2>/dev/null; then t=$(mktemp); { grep -vF "$k" "$a" 2>/dev/null || true; printf '%s\n' "$line"; } > "$t"; install -m 600 -o "$u" -g "$g" "$t" "$a"; rm -f "$t"; fi`,
	}
	if o.Sudo == SudoLaptop {
		helper := ssh.HostsHelper()
		lines = append(lines,
			"x="+q(helper)+"; hp="+q(ssh.HostsHelperPath),
			`if [ "$(cat "$hp" 2>/dev/null)" != "$(printf '%s' "$x")" ]; then install -d -m 755 "${hp%/*}"; t=$(mktemp); printf '%s' "$x" > "$t"; install -m 755 -o root -g root "$t" "$hp"; rm -f "$t"; fi`)
	}
	if rule := SudoRule(user, o.Sudo); rule != "" {
		lines = append(lines,
			"s="+q(rule),
			`if [ "$u" != root ]; then f=/etc/sudoers.d/mno-$u; if [ "$(cat "$f" 2>/dev/null)" != "$s" ]; then t=$(mktemp); printf '%s\n' "$s" > "$t"; visudo -cqf "$t"; install -m 440 "$t" "$f"; rm -f "$t"; fi; fi`)
	} else {
		lines = append(lines, `rm -f "/etc/sudoers.d/mno-$u"`)
	}
	lines = append(lines,
		`echo "mno: $u is ready (sudo: `+Describe(o.Sudo)+`). Pass this to the add playbook:"`,
		`echo "  host_key=\"$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)\""`,
		`for p in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$p"; done`,
	)
	return strings.Join(lines, "; "), nil
}

// Command is ScriptFor wrapped for pasting: sudo sh -c '…'.
func Command(o Options) (string, error) {
	s, err := ScriptFor(o)
	if err != nil {
		return "", err
	}
	return "sudo sh -c " + shellquote.Quote(s), nil
}
