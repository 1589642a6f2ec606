package ssh

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mno-sh/mno/engine/starkit"
)

// The sudo=True side of the file operations: each is one POSIX sh script run
// as root with `sudo -n`, its arguments quoted after it and file content on
// its stdin, never on a command line.

// probeScript prints "missing" (with "dir" or "nodir": whether the parent
// directory exists), or "ok" and a stat line, then the content of a regular
// file of at most $2 bytes, or the SHA-256 of one of exactly $4 bytes. $3=1
// follows a symlink.
const probeScript = `p=$1
d=${p%/*}; d=${d:-/}
if [ -d "$d" ]; then m="missing dir"; else m="missing nodir"; fi
if [ "$3" = 1 ]; then
  [ -e "$p" ] || { echo "$m"; exit 0; }
  L=-L
else
  [ -e "$p" ] || [ -L "$p" ] || { echo "$m"; exit 0; }
  L=
fi
s=$(stat $L -c '%f %s %u %g %U %G %Y' -- "$p") || exit 1
echo "ok $s"
n=${s#* }; n=${n%% *}
if [ $(( 0x${s%% *} & 61440 )) -eq 32768 ]; then
  if [ "$n" -le "$2" ]; then exec cat -- "$p"; fi
  if [ "$n" -eq "$4" ]; then sha256sum < "$p"; fi
fi`

// writeScript replaces $1 atomically with its stdin ($5 bytes), mode $2,
// owner $3 and group $4 ("" keeps the replaced file's): temporary file
// (suffix $6) in a staging directory on the same filesystem next to the
// target's directory, length check (a cut connection ends stdin early),
// fsync, rename. $7, when set, is the umask that creates the file with mode
// $2 (no chmod then). Owner 0:0 needs no chown: root creates the file (unless
// the staging directory is setgid). Shell builtins stand in for dirname and
// friends: every process costs a fork on the host.
const writeScript = `set -e
p=$1 m=$2 o=$3 g=$4 n=$5
if [ -L "$p" ]; then p=$(readlink -f -- "$p"); fi
d=${p%/*}; d=${d:-/}
[ -d "$d" ] || { echo "mno: directory $d does not exist" >&2; exit 3; }
u=${d%/*}; u=${u:-/}
s=${d%/}/.mno-staging
if [ "$d" != / ]; then
  set -- "$@" $(stat -c %d -- "$u" "$d")
  if [ "$8" = "$9" ]; then s=${u%/}/.mno-staging; fi
fi
[ -d "$s" ] || mkdir -m 700 -- "$s" 2>/dev/null || [ -d "$s" ]
t=$s/${p##*/}.$6.tmp
if [ -n "$7" ]; then umask "$7"; else umask 077; fi
trap 'rm -f -- "$t"' EXIT
set -C
cat > "$t"
set +C
k=$(stat -c %s -- "$t")
[ "$k" = "$n" ] || { echo "mno: only $k of $n bytes arrived" >&2; exit 4; }
if [ -e "$p" ] && { [ -z "$o" ] || [ -z "$g" ]; }; then
  set -- $(stat -c '%u %g' -- "$p")
  o=${o:-$1} g=${g:-$2}
fi
if [ "$o:$g" = 0:0 ] && [ ! -g "$s" ]; then :
elif [ -n "$o" ] && [ -n "$g" ]; then chown -- "$o:$g" "$t"
elif [ -n "$o" ]; then chown -- "$o" "$t"
elif [ -n "$g" ]; then chgrp -- "$g" "$t"
fi
if [ -z "$7" ]; then chmod -- "$m" "$t"; fi
sync -- "$t"
mv -f -- "$t" "$p"
trap - EXIT
if [ "$s" = "${d%/}/.mno-staging" ]; then rmdir -- "$s" 2>/dev/null || :; fi`

// mkdirScript makes $1 and its parents, then sets the mode, owner and group
// of $1.
const mkdirScript = `set -e
mkdir -p -- "$1"
chmod -- "$2" "$1"
if [ -n "$3" ]; then chown -- "$3" "$1"; fi
if [ -n "$4" ]; then chgrp -- "$4" "$1"; fi`

// removeScript removes a file or symlink, an empty directory, or a tree.
const removeScript = `case $2 in
file) rm -f -- "$1" ;;
dir) rmdir -- "$1" ;;
tree) rm -rf -- "$1" ;;
esac`

// script runs a script (as root when sudo) with args and stdin.
func (h *host) script(ctx context.Context, sudo bool, script string, stdin []byte, args ...string) (execOut, error) {
	argv := append([]string{"/bin/sh", "-c", script, "sh"}, args...)
	out, err := h.c.exec(ctx, remoteCmd{argv: argv, sudo: sudo, stdin: stdin})
	if err != nil {
		return out, err
	}
	if out.code != 0 && sudo {
		if err := sudoRefusal(h.user, h.name, out.stderr); err != nil {
			return out, err
		}
	}
	return out, nil
}

func scriptErr(what string, out execOut) error {
	msg := strings.TrimSpace(starkit.Tail(string(out.stderr), 5))
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", out.code)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// shellProbe is sftpProbe as root: one exec.
func (h *host) shellProbe(ctx context.Context, p string, limit, sumSize int64, follow bool) (probe, error) {
	f := "0"
	if follow {
		f = "1"
	}
	out, err := h.script(ctx, true, probeScript, nil, p, strconv.FormatInt(limit, 10), f, strconv.FormatInt(sumSize, 10))
	if err != nil {
		return probe{}, err
	}
	if out.code != 0 {
		return probe{}, scriptErr("stat "+p, out)
	}
	head, rest, _ := bytes.Cut(out.stdout, []byte("\n"))
	if m, ok := strings.CutPrefix(string(head), "missing"); ok {
		m = strings.TrimSpace(m)
		return probe{dirKnown: m != "", dirExists: m == "dir"}, nil
	}
	info, err := parseStat(string(head))
	if err != nil {
		return probe{}, fmt.Errorf("stat %s: %v", p, err)
	}
	pr := probe{info: info}
	if info.isRegular {
		switch {
		case info.size <= limit:
			pr.content, pr.full = rest, true
		case info.size == sumSize:
			pr.sum, _, _ = strings.Cut(strings.TrimSpace(string(rest)), " ")
		}
	}
	return pr, nil
}

// parseStat reads "ok RAWMODE SIZE UID GID USER GROUP MTIME".
func parseStat(line string) (*fileInfo, error) {
	f := strings.Fields(line)
	if len(f) != 8 || f[0] != "ok" {
		return nil, fmt.Errorf("unexpected stat output %q", line)
	}
	raw, err1 := strconv.ParseUint(f[1], 16, 32)
	size, err2 := strconv.ParseInt(f[2], 10, 64)
	uid, err3 := strconv.Atoi(f[3])
	gid, err4 := strconv.Atoi(f[4])
	mtime, err5 := strconv.ParseInt(f[7], 10, 64)
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return nil, fmt.Errorf("unexpected stat output %q", line)
		}
	}
	typ := raw & 0o170000
	info := &fileInfo{
		isDir: typ == 0o040000, isLink: typ == 0o120000, isRegular: typ == 0o100000,
		size: size, mode: uint32(raw & 0o7777), uid: uid, gid: gid, mtime: mtime,
		owner: f[5], group: f[6],
	}
	if info.owner == "UNKNOWN" {
		info.owner = ""
	}
	if info.group == "UNKNOWN" {
		info.group = ""
	}
	return info, nil
}

// shellWrite is sftpWrite as root: one exec, content on stdin. old is the
// probed file (nil: missing), whose owner and group a write keeps unless w
// names others; passing them spares the script a stat.
func (h *host) shellWrite(ctx context.Context, p string, old *fileInfo, w *writeSpec) error {
	owner, group := w.owner, w.group
	if old != nil {
		if owner == "" {
			owner = strconv.Itoa(old.uid)
		}
		if group == "" {
			group = strconv.Itoa(old.gid)
		}
	}
	// A mode without execute or special bits can come from the umask at
	// creation, which spares a chmod.
	umask := ""
	if w.mode&0o7111 == 0 {
		umask = "0" + strconv.FormatUint(uint64(0o666&^w.mode), 8)
	}
	out, err := h.script(ctx, true, writeScript, w.content, p, octal(w.mode), owner, group,
		strconv.Itoa(len(w.content)), randomSuffix(), umask)
	if err != nil {
		return err
	}
	switch {
	case out.code == 3:
		return fmt.Errorf("%s: directory %s does not exist (create it with host.mkdir)", p, parentDir(p))
	case out.code != 0:
		return scriptErr("writing "+p, out)
	}
	return nil
}
