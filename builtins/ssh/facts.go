package ssh

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/journal"
)

// facts are what playbooks branch on, gathered in one exec per connection.
type facts struct {
	hostname, os, arch, distro, version, home string
	uid                                       int
}

// factsScript prints key=value lines, then "--" and os-release. The home
// directory is the login user's passwd entry (getent, so LDAP users work),
// never a guess like /home/USER.
const factsScript = `echo "hostname=$(uname -n)"
echo "os=$(uname -s)"
echo "arch=$(uname -m)"
echo "uid=$(id -u)"
u=$(id -un)
h=$(getent passwd "$u" 2>/dev/null | cut -d: -f6)
[ -n "$h" ] || h=$(awk -F: -v u="$u" '$1 == u { print $6; exit }' /etc/passwd 2>/dev/null)
echo "home=${h:-$HOME}"
echo --
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
exit 0`

func (f *facts) value() starlark.Value {
	return starlarkstruct.FromStringDict(starlark.String("facts"), starlark.StringDict{
		"hostname": starlark.String(f.hostname),
		"os":       starlark.String(f.os),
		"arch":     starlark.String(f.arch),
		"distro":   starlark.String(f.distro),
		"version":  starlark.String(f.version),
		"home":     starlark.String(f.home),
		"uid":      starlark.MakeInt(f.uid),
	})
}

// facts returns the connection's facts, gathering them on first use.
func (h *host) facts() (*facts, error) {
	h.c.factsMu.Lock()
	defer h.c.factsMu.Unlock()
	if h.c.facts != nil {
		return h.c.facts, nil
	}
	var f *facts
	_, err := h.do(nil, journal.Op{
		Kind: "facts", Desc: "hostname os arch distro version home uid",
		Apply: func(ctx context.Context) (journal.Change, error) {
			out, err := h.c.exec(ctx, remoteCmd{argv: []string{"/bin/sh", "-c", factsScript}})
			if err != nil {
				return journal.Change{}, err
			}
			if out.code != 0 {
				return journal.Change{}, scriptErr("gathering facts", out)
			}
			f, err = parseFacts(string(out.stdout))
			return journal.Change{}, err
		},
	})
	if err != nil {
		return nil, err
	}
	h.c.facts = f
	return f, nil
}

func parseFacts(s string) (*facts, error) {
	head, osRelease, _ := strings.Cut(s, "\n--\n")
	kv := map[string]string{}
	for _, line := range strings.Split(head, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	f := &facts{
		hostname: kv["hostname"], os: strings.ToLower(kv["os"]), arch: kv["arch"], home: kv["home"],
	}
	uid, err := strconv.Atoi(kv["uid"])
	if err != nil {
		return nil, fmt.Errorf("unexpected facts output %q", s)
	}
	f.uid = uid
	for _, line := range strings.Split(osRelease, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			f.distro = v
		case "VERSION_ID":
			f.version = v
		}
	}
	return f, nil
}
