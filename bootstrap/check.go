package bootstrap

import (
	"strings"

	"github.com/mno-sh/mno/internal/shellquote"

	"github.com/mno-sh/mno/builtins/ssh"
)

// Check returns a POSIX sh script that exits 0 when what ScriptFor(o) sets
// up is already in place on the node — the user, its authorized_keys line
// with from="…", its sudo rule (and for the laptop rule the /etc/hosts
// helper) — and non-zero otherwise, changing nothing. Playbooks that run the
// script over SSH (adopt) run it only unless Check succeeds, so a second run
// changes nothing.
func Check(o Options) (string, error) {
	if _, err := ScriptFor(o); err != nil {
		return "", err
	}
	if o.Sudo == "" {
		o.Sudo = SudoAll
	}
	q := shellquote.Quote
	lines := []string{
		"set -eu",
		"u=" + q(o.User) + "; line=" + q(`from="`+o.From+`" `+o.Key),
		`id "$u" >/dev/null 2>&1`,
		`h=$(getent passwd "$u" | cut -d: -f6)`,
		`grep -qxF "$line" "$h/.ssh/authorized_keys"`,
	}
	if o.Sudo == SudoLaptop {
		lines = append(lines, "x="+q(ssh.HostsHelper())+"; hp="+q(ssh.HostsHelperPath),
			`[ "$(cat "$hp" 2>/dev/null)" = "$(printf '%s' "$x")" ]`)
	}
	if rule := SudoRule(o.User, o.Sudo); rule != "" {
		lines = append(lines, "s="+q(rule), `[ "$u" = root ] || [ "$(cat "/etc/sudoers.d/mno-$u" 2>/dev/null)" = "$s" ]`)
	} else {
		lines = append(lines, `[ ! -e "/etc/sudoers.d/mno-$u" ]`)
	}
	return strings.Join(lines, "; "), nil
}
