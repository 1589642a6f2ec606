package ssh

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The laptop sudo rule. A laptop's login user is a person, who should not get
// passwordless root for everything: all the laptop role needs as root is to
// edit /etc/hosts. `mno bootstrap --sudo laptop` installs HostsHelper at
// HostsHelperPath (root's, 0755) and lets the user run exactly that, with no
// arguments:
//
//	alice ALL=(root) NOPASSWD: /usr/local/libexec/mno/edit-hosts ""
//
// A rule on the generic root script (`sudo /bin/sh -c SCRIPT sh ARGS…`)
// would not be narrow: sudo matches the arguments joined by spaces, so the
// user could re-split them and run a prefix of the script on a path of their
// choosing, and the write's mode and owner come from stdin. The helper takes
// nothing from its argv, edits /etc/hosts only, and in restricted mode keeps
// the file's owner, group and mode and refuses a symlink.
//
// The ssh builtin uses it by itself: a sudo edit or put of /etc/hosts that
// sudo refuses for the generic script is retried through the helper, and the
// connection remembers that it works. Its effect's note says so.

// HostsHelperPath is where the bootstrap installs the helper on a laptop.
const HostsHelperPath = "/usr/local/libexec/mno/edit-hosts"

// hostsHelperProtocol changes whenever editScript does: a helper from
// another mno version refuses to run, asking for the bootstrap line again.
var hostsHelperProtocol = func() string {
	s := sha256.Sum256([]byte(editScript))
	return hex.EncodeToString(s[:6])
}()

// HostsHelper returns the helper script the bootstrap installs.
func HostsHelper() string {
	return strings.Join([]string{
		"#!/bin/sh",
		"# mno edit-hosts: mno's root edit script for /etc/hosts alone, the one command",
		"# of the laptop sudo rule (mno bootstrap --sudo laptop). Installed by mno; do not edit.",
		"IFS=' ' read -r lim sum end proto || exit 1",
		`[ "$proto" = ` + hostsHelperProtocol + ` ] || { echo "mno: $0 is from another version of mno (protocol ${proto:-?}): paste this mno's bootstrap line (mno bootstrap --sudo laptop) on the node again" >&2; exit 5; }`,
		`case $lim$sum in ''|*[!0-9-]*) exit 1 ;; esac`,
		`case $end in mno-probe-end-*) ;; *) exit 1 ;; esac`,
		`case $end in *[!a-z0-9-]*) exit 1 ;; esac`,
		"restricted=1",
		`set -- /etc/hosts "$lim" "$sum" "$end"`,
		editScript,
		"",
	}, "\n")
}

// helperLine is the command line and first stdin line of a helper edit.
func helperLine(limit, sumSize string, marker string) (line string, stdin string) {
	return "exec sudo -n -- " + HostsHelperPath, limit + " " + sumSize + " " + marker + " " + hostsHelperProtocol + "\n"
}
