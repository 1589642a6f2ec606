package bootstrap

import (
	"strings"

	"github.com/mno-sh/mno/engine/starkit"
)

// Check returns a POSIX sh script that exits 0 when what Script(user, key,
// from) sets up is already in place on the node — the user, its
// authorized_keys line with from="from", its sudoers entry — and non-zero
// otherwise, changing nothing. Playbooks that run Script over SSH (adopt)
// run it only unless Check succeeds, so a second run changes nothing.
func Check(user, key, from string) (string, error) {
	if _, err := Script(user, key, from); err != nil {
		return "", err
	}
	q := starkit.ShellQuote
	lines := []string{
		"set -eu",
		"u=" + q(user) + "; line=" + q(`from="`+from+`" `+key),
		`id "$u" >/dev/null 2>&1`,
		`h=$(getent passwd "$u" | cut -d: -f6)`,
		`grep -qxF "$line" "$h/.ssh/authorized_keys"`,
		`[ "$u" = root ] || [ "$(cat "/etc/sudoers.d/mno-$u" 2>/dev/null)" = "$u ALL=(ALL) NOPASSWD:ALL" ]`,
	}
	return strings.Join(lines, "; "), nil
}
