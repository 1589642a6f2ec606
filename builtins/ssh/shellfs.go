package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/engine/starkit"
)

// The sudo=True side of the file operations: each is one POSIX sh script run
// as root with `sudo -n`, its arguments quoted after it and file content on
// its stdin, never on a command line. put and edit probe and write on one
// exec (editScript), so a changed file costs one sudo.

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

// editScript is probeScript (following symlinks; $2 and $3 are its limit and
// sum size) and then, on the same exec — one sudo, one root shell — the
// write, when the client asks for it. After the probe's output it prints a
// newline and the marker $4, and waits on stdin: EOF (or any first line but
// "write") ends it without writing; "write" is followed by one line each for
// the mode, owner and group ("": keep the replaced file's), byte count,
// temporary-file suffix and umask (set: it creates the file with the mode,
// so no chmod), then the content.
//
// The write replaces $1 atomically: temporary file in a staging directory on
// the same filesystem next to the target's directory — used only when it is
// a real directory of root's with mode 0700, else a fresh one from mktemp -d
// beside it, removed afterwards — length check (a cut
// connection ends stdin early), fsync, rename. Owner 0:0 needs no chown: root
// creates the file (unless the staging directory is setgid). Shell builtins
// stand in for dirname and friends, the probe's stat also tells whether the
// target's directory and its parent are one filesystem, and dd writes and
// fsyncs the temporary file: every process costs a fork on the host.
const editScript = `p=$1 lim=$2 sum=$3 end=$4
d=${p%/*}; d=${d:-/}
u=${d%/*}; u=${u:-/}
same=
if [ -e "$p" ]; then
  s=$(stat -L -c '%f %s %u %g %U %G %Y %d' -- "$p" "$d" "$u") || exit 1
  set -f; set -- $s; set +f
  [ $# = 24 ] || { echo "mno: unexpected stat output: $s" >&2; exit 1; }
  echo "ok $1 $2 $3 $4 $5 $6 $7"
  if [ "${16}" = "${24}" ]; then same=1; else same=0; fi
  if [ $(( 0x$1 & 61440 )) -eq 32768 ]; then
    if [ "$2" -le "$lim" ]; then cat -- "$p" || exit 1
    elif [ "$2" -eq "$sum" ]; then sha256sum < "$p" || exit 1
    fi
  fi
elif [ -d "$d" ]; then echo "missing dir"
else echo "missing nodir"
fi
printf '\n%s\n' "$end"
IFS= read -r w || exit 0
[ "$w" = write ] || exit 0
set -e
IFS= read -r m; IFS= read -r o; IFS= read -r g; IFS= read -r n; IFS= read -r x; IFS= read -r um
case $n in ''|*[!0-9]*) echo "mno: bad byte count" >&2; exit 1 ;; esac
if [ -n "${restricted:-}" ]; then
  [ -f "$p" ] && [ ! -L "$p" ] || { echo "mno: $p must be an existing regular file (laptop sudo rule)" >&2; exit 6; }
  set -- $(stat -c '%u %g %a' -- "$p")
  [ "$o:$g:$m" = "$1:$2:0$3" ] || { echo "mno: the laptop sudo rule keeps $p's owner, group and mode ($1:$2 0$3)" >&2; exit 6; }
  um=
fi
if [ -L "$p" ]; then
  p=$(readlink -f -- "$p"); same=
  d=${p%/*}; d=${d:-/}
  u=${d%/*}; u=${u:-/}
fi
[ -d "$d" ] || { echo "mno: directory $d does not exist" >&2; exit 3; }
s=${d%/}/.mno-staging
if [ "$d" != / ]; then
  if [ -z "$same" ]; then
    set -- $(stat -c %d -- "$u" "$d")
    if [ "$1" = "$2" ]; then same=1; fi
  fi
  if [ "$same" = 1 ]; then s=${u%/}/.mno-staging; fi
fi
case $x in ''|*[!0-9a-f]*) echo "mno: bad temporary-file suffix" >&2; exit 1 ;; esac
[ -e "$s" ] || [ -L "$s" ] || mkdir -m 700 -- "$s" 2>/dev/null || :
f=
set -- $(stat -c '%u %a %F' -- "$s" 2>/dev/null)
if [ "$*" != "0 700 directory" ]; then s=$(mktemp -d -- "$s.XXXXXXXX") || exit 1; f=1; fi
t=$s/${p##*/}.$x.tmp
if [ -n "$um" ]; then umask "$um"; else umask 077; fi
trap 'rm -f -- "$t"' EXIT
dd of="$t" bs=1M conv=excl,fsync status=none
k=$(stat -c %s -- "$t")
[ "$k" = "$n" ] || { echo "mno: only $k of $n bytes arrived" >&2; exit 4; }
if [ -e "$p" ] && { [ -z "$o" ] || [ -z "$g" ]; }; then
  set -- $(stat -c '%u %g' -- "$p")
  o=${o:-$1} g=${g:-$2}
fi
a=
if [ "$o:$g" = 0:0 ] && [ ! -g "$s" ]; then :
elif [ -n "$o" ] && [ -n "$g" ]; then chown -- "$o:$g" "$t"; a=1
elif [ -n "$o" ]; then chown -- "$o" "$t"; a=1
elif [ -n "$g" ]; then chgrp -- "$g" "$t"; a=1
fi
if [ -z "$um" ]; then chmod -- "$m" "$t"; a=1; fi
if [ -n "$a" ]; then sync -- "$t"; fi
mv -f -- "$t" "$p"
trap - EXIT
if [ -n "$f" ] || [ "$s" = "${d%/}/.mno-staging" ]; then rmdir -- "$s" 2>/dev/null || :; fi`

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

// shellFS is the remoteFS of a call with sudo=True: the scripts above as
// root (see remotefs.go).
type shellFS struct{ *host }

func (h shellFS) describe(p string) string { return p + " (sudo)" }

func (h shellFS) stat(ctx context.Context, p string, follow bool) (*fileInfo, error) {
	pr, err := h.probe(ctx, p, -1, -1, follow)
	return pr.info, err
}

func (h shellFS) isDir(ctx context.Context, p string) (bool, error) {
	info, err := h.stat(ctx, p, true)
	return info != nil && info.isDir, err
}

func (h shellFS) read(ctx context.Context, p string) ([]byte, bool, error) {
	pr, err := h.probe(ctx, p, noLimit, -1, true)
	switch {
	case err != nil:
		return nil, false, err
	case pr.info == nil:
		return nil, true, nil
	case !pr.info.isRegular:
		return nil, false, fmt.Errorf("%s is not a regular file", p)
	}
	return pr.content, false, nil
}

func (h shellFS) lprobe(ctx context.Context, p string, limit int64) (probe, error) {
	return h.probe(ctx, p, limit, -1, false)
}

func (h shellFS) openEdit(ctx context.Context, p string, limit, sumSize int64) (fileEdit, probe, error) {
	e, pr, err := h.editProbe(ctx, p, limit, sumSize)
	if err != nil {
		return nil, pr, err
	}
	return e, pr, nil
}

// names is best effort: the stat has the names the host knows.
func (h shellFS) names(ctx context.Context, info *fileInfo) error {
	h.fillNames(ctx, info)
	return nil
}

func (h shellFS) mkdir(ctx context.Context, p string, mode uint32, owner, group string) error {
	out, err := h.script(ctx, true, mkdirScript, nil, p, octal(mode), owner, group)
	if err != nil {
		return err
	}
	if out.code != 0 {
		return scriptErr("mkdir "+p, out)
	}
	return nil
}

func (h shellFS) remove(ctx context.Context, p, what string) error {
	return runRemoveScript(ctx, h.host, true, p, what)
}

func (h shellFS) dirEmpty(ctx context.Context, p string) (bool, error) {
	out, err := h.script(ctx, true, `[ -z "$(ls -A -- "$1")" ]`, nil, p)
	if err != nil {
		return false, err
	}
	return out.code == 0, nil
}

// runRemoveScript runs removeScript (as root when sudo).
func runRemoveScript(ctx context.Context, h *host, sudo bool, p, what string) error {
	out, err := h.script(ctx, sudo, removeScript, nil, p, what)
	if err != nil {
		return err
	}
	if out.code != 0 {
		return removeErr(p, what, scriptErr("remove "+p, out))
	}
	return nil
}

// script runs a script (as root when sudo) with args and stdin.
func (h *host) script(ctx context.Context, sudo bool, script string, stdin []byte, args ...string) (execOut, error) {
	rc := remoteCmd{argv: append([]string{"/bin/sh", "-c", script, "sh"}, args...), sudo: sudo, stdin: stdin}
	out, err := h.c.exec(ctx, rc)
	if err != nil {
		return out, err
	}
	return out, h.refusal(rc, out)
}

func scriptErr(what string, out execOut) error {
	msg := strings.TrimSpace(starkit.Tail(string(out.stderr), 5))
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", out.code)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// probe is sftpFS.probe as root: one exec.
func (h shellFS) probe(ctx context.Context, p string, limit, sumSize int64, follow bool) (probe, error) {
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
	return parseProbe(p, out.stdout, limit)
}

// parseProbe reads probeScript's output: "missing dir|nodir", or the stat
// line and then the content or SHA-256.
func parseProbe(p string, stdout []byte, limit int64) (probe, error) {
	head, rest, _ := bytes.Cut(stdout, []byte("\n"))
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
		default:
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

// shellEdit is an open editScript exec: the probe has been read, and the
// root shell waits for write or close. Between the two it is parked (see
// conn.park) when the connection has a parked slot free; otherwise it ends
// after the probe and write starts a fresh one.
type shellEdit struct {
	h       shellFS
	s       *xssh.Session
	release func()
	stdin   io.WriteCloser
	stderr  bytes.Buffer // written by the session until Wait returns
	stop    func() bool  // of the context.AfterFunc that kills it
	over    bool         // waited for, or handed to close
	helper  bool         // the laptop rule's helper, not the generic script
}

// sudoRefused marks sudo refusing the command (password asked, not allowed).
type sudoRefused struct{ err error }

func (e *sudoRefused) Error() string { return e.err.Error() }
func (e *sudoRefused) Unwrap() error { return e.err }

// editProbe is probe (following symlinks) that keeps the root shell for the
// write when it can: then a changed file costs one sudo instead of two. The
// caller must close the returned shellEdit (unless it wrote).
func (h shellFS) editProbe(ctx context.Context, p string, limit, sumSize int64) (*shellEdit, probe, error) {
	e, pr, err := h.startEdit(ctx, p, limit, sumSize)
	if err != nil {
		return nil, probe{}, err
	}
	if h.c.park() {
		s := e.s
		e.release = func() { s.Close(); h.c.unpark() }
	} else {
		e.close()
	}
	return e, pr, nil
}

// startEdit starts editScript and reads its probe.
func (h shellFS) startEdit(ctx context.Context, p string, limit, sumSize int64) (*shellEdit, probe, error) {
	helper := p == "/etc/hosts" && h.c.hostsHelper.Load()
	e, pr, err := h.startEditVia(ctx, p, limit, sumSize, helper)
	if err != nil && !helper && p == "/etc/hosts" && errors.As(err, new(*sudoRefused)) {
		// Maybe the laptop rule: only the helper may run as root.
		e2, pr2, err2 := h.startEditVia(ctx, p, limit, sumSize, true)
		if err2 == nil {
			h.c.hostsHelper.Store(true)
			return e2, pr2, nil
		}
		if !errors.As(err2, new(*sudoRefused)) {
			return nil, probe{}, err2
		}
	}
	return e, pr, err
}

// startEditVia starts editScript, or the laptop rule's helper, and reads its
// probe.
func (h shellFS) startEditVia(ctx context.Context, p string, limit, sumSize int64, helper bool) (*shellEdit, probe, error) {
	marker := "mno-probe-end-" + randomSuffix() + randomSuffix()
	line, first, err := editCommand(p, limit, sumSize, marker, helper)
	if err != nil {
		return nil, probe{}, err
	}
	e, stdout, err := h.startShell(ctx, line, first, helper)
	if err != nil {
		return nil, probe{}, err
	}
	// Read up to the marker, after which the shell waits on stdin.
	end := []byte("\n" + marker + "\n")
	out, complete := readToMarker(stdout, end)
	if !complete {
		return nil, probe{}, e.probeFailed(ctx, p)
	}
	pr, err := parseProbe(p, out[:len(out)-len(end)], limit)
	if err != nil {
		e.close()
		return nil, probe{}, err
	}
	return e, pr, nil
}

// editCommand is the command line of an edit, and what it is sent on stdin
// first (the helper's arguments).
func editCommand(p string, limit, sumSize int64, marker string, helper bool) (line, first string, err error) {
	lim, sum := strconv.FormatInt(limit, 10), strconv.FormatInt(sumSize, 10)
	if helper {
		line, first = helperLine(lim, sum, marker)
		return line, first, nil
	}
	line, _, err = remoteCmd{argv: []string{"/bin/sh", "-c", editScript, "sh", p, lim, sum, marker}, sudo: true}.build()
	return line, "", err
}

// startShell starts line on a new session, sends first on its stdin, and
// returns the shellEdit and its stdout; cancelling ctx kills it.
func (h shellFS) startShell(ctx context.Context, line, first string, helper bool) (*shellEdit, io.Reader, error) {
	s, release, err := h.c.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	e := &shellEdit{h: h, s: s, release: release, helper: helper}
	s.Stderr = &e.stderr
	stdout, err := s.StdoutPipe()
	if err == nil {
		e.stdin, err = s.StdinPipe()
	}
	if err == nil {
		err = s.Start(line)
	}
	if err == nil && first != "" {
		_, err = io.WriteString(e.stdin, first)
	}
	if err != nil {
		release()
		return nil, nil, h.c.opErr(err)
	}
	e.stop = context.AfterFunc(ctx, func() {
		s.Signal(xssh.SIGKILL)
		s.Close()
	})
	return e, stdout, nil
}

// readToMarker reads r until what it read ends with end (complete) or r
// ends.
func readToMarker(r io.Reader, end []byte) (out []byte, complete bool) {
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for {
		n, rerr := r.Read(chunk)
		buf.Write(chunk[:n])
		if bytes.HasSuffix(buf.Bytes(), end) {
			return buf.Bytes(), true
		}
		if rerr != nil {
			return buf.Bytes(), false
		}
	}
}

// probeFailed is why a shell ended before its probe was complete.
func (e *shellEdit) probeFailed(ctx context.Context, p string) error {
	out, err := e.wait(ctx)
	if err != nil {
		return err
	}
	if err := sudoRefusal(e.h.user, e.h.name, out.stderr); err != nil {
		return &sudoRefused{err}
	}
	if out.code == 0 {
		out.code = -1
	}
	return scriptErr("stat "+p, out)
}

// wait waits for the script's exit.
func (e *shellEdit) wait(ctx context.Context) (execOut, error) {
	e.over = true
	defer e.release()
	err := e.s.Wait()
	stopped := !e.stop()
	out := execOut{stderr: e.stderr.Bytes()}
	var ee *xssh.ExitError
	switch {
	case stopped && ctx.Err() != nil:
		return out, fmt.Errorf("command cancelled: %v", context.Cause(ctx))
	case err == nil:
	case errors.As(err, &ee):
		out.code = ee.ExitStatus()
	default:
		return out, e.h.c.opErr(fmt.Errorf("remote command: %w", err))
	}
	return out, nil
}

// close ends the shell without writing; it exits at EOF on its own, so
// nothing waits for it.
func (e *shellEdit) close() {
	if e == nil || e.over {
		return
	}
	e.over = true
	e.stdin.Close()
	go func() {
		e.s.Wait()
		e.stop()
		e.release()
	}()
}

// note says when the write goes through the laptop rule's helper.
func (e *shellEdit) note() string {
	if e.helper {
		return "via " + HostsHelperPath + ": the laptop sudo rule"
	}
	return ""
}

// write is sftpFS.write as root, on the probe's exec: content on stdin. The
// probed file's owner and group (pr.info; nil: missing) are kept unless w
// names others; passing them spares the script a stat.
func (e *shellEdit) write(ctx context.Context, p string, pr *probe, w *writeSpec) error {
	if e.over {
		// Not parked: its shell ended after the probe. A fresh one, whose
		// probe (no content) goes unread.
		fresh, _, err := e.h.startEditVia(ctx, p, 0, -1, e.helper)
		if err != nil {
			return err
		}
		e = fresh
	}
	head, err := writeHead(p, pr.info, w)
	if err != nil {
		e.close()
		return err
	}
	stdin := e.stdin
	go func() {
		// Errors here mean the script exited without reading all of its
		// stdin, which its exit status reports.
		stdin.Write([]byte(head))
		stdin.Write(w.content)
		stdin.Close()
	}()
	out, err := e.wait(ctx)
	if err != nil {
		return err
	}
	switch {
	case out.code == 3:
		return fmt.Errorf("%s: directory %s does not exist (create it with host.mkdir)", p, parentDir(p))
	case out.code != 0:
		if err := sudoRefusal(e.h.user, e.h.name, out.stderr); err != nil {
			return err
		}
		return scriptErr("writing "+p, out)
	}
	return nil
}

// writeHead is the lines editScript reads before the content: "write", the
// mode, owner and group (old's when w names none), byte count, temporary
// file suffix and umask.
func writeHead(p string, old *fileInfo, w *writeSpec) (string, error) {
	owner, group := w.owner, w.group
	if strings.ContainsAny(owner+group, "\n") {
		return "", fmt.Errorf("%s: owner and group must not contain a newline", p)
	}
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
	return strings.Join([]string{"write", octal(w.mode), owner, group, strconv.Itoa(len(w.content)), randomSuffix(), umask}, "\n") + "\n", nil
}
