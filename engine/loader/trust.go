package loader

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Trust of files on disk, as git's safe.directory decides it.
//
// A workspace that mno finds by itself (no --root) is code that will run as
// the user — often root — so it must be the user's own: mno loads from it
// only when
//
//   - the workspace directory, and every directory below it that mno looks a
//     file up in (roles/, playbooks/, …), and every file it reads, belong to
//     the user or root and are not writable by group or others — sticky bit
//     or not: in a sticky world-writable directory anyone may still create
//     the roles/common.star that mno would otherwise take from the binary;
//   - every directory above the workspace belongs to the user or root and is
//     not writable by group or others, except that a sticky one (/tmp) is
//     fine: there nobody can rename or replace the entry below it, which
//     itself belongs to the user or root (checked as part of the chain).
//
// So ~/proj is fine, /tmp/mine/proj (mine created by the user) is fine, and
// /tmp itself, or /srv/shared (group-writable) holding roles/, is refused
// with the fix in the message. Symlinks are followed and the real path is
// what is checked. An explicit --root is the user's own statement and is
// not checked; the run's header still lists every file read from disk.

// UnsafeError says why a workspace, or a file in it, is not trusted.
type UnsafeError struct {
	Workspace string // the directory mno found
	Path      string // the offending file or directory
	Problem   string // "is writable by others (mode 0777)"
	Fix       string
}

func (e *UnsafeError) Error() string {
	var b strings.Builder
	if e.Path == e.Workspace {
		fmt.Fprintf(&b, "workspace %s is not safe to run code from: it %s", e.Workspace, e.Problem)
	} else {
		fmt.Fprintf(&b, "workspace %s is not safe to run code from: %s %s", e.Workspace, e.Path, e.Problem)
	}
	b.WriteString("\n  mno uses a workspace it finds above the current directory (or the playbook) only when it," +
		"\n  every directory above it and every file it loads belong to you or root and nobody else can write them.")
	fmt.Fprintf(&b, "\n  fix: %s", e.Fix)
	return b.String()
}

// trust caches the checks of one loader.
type trust struct {
	euid int
	mu   sync.Mutex
	ok   map[string]error // real path → result
}

func newTrust() *trust { return &trust{euid: os.Geteuid(), ok: map[string]error{}} }

func (t *trust) ownerOK(uid uint32) bool { return int(uid) == t.euid || uid == 0 }

func ownerName(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return fmt.Sprintf("user %s (%d)", u.Username, uid)
	}
	return fmt.Sprintf("user %d", uid)
}

func (t *trust) you() string {
	if t.euid == 0 {
		return "root"
	}
	if u, err := user.LookupId(strconv.Itoa(t.euid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(t.euid)
}

// problem returns what is wrong with fi for a file or lookup directory
// (strict: no write bits for group or others) or for a directory above the
// workspace (sticky world-writable allowed); "" when nothing.
func (t *trust) problem(fi fs.FileInfo, above bool) (string, string) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", ""
	}
	if !t.ownerOK(st.Uid) {
		return fmt.Sprintf("belongs to %s, not to you (%s) or root", ownerName(st.Uid), t.you()), "chown"
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 {
		return "", ""
	}
	if above && fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 {
		return "", ""
	}
	who := "others"
	if perm&0o002 == 0 {
		who = "its group"
	}
	mode := uint32(perm)
	if fi.Mode()&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return fmt.Sprintf("is writable by %s (mode %04o)", who, mode), "chmod"
}

// check checks one real path; the result is cached.
func (t *trust) check(ws, real string, above bool) error {
	key := real
	if above {
		key = "above:" + real
	}
	t.mu.Lock()
	err, done := t.ok[key]
	t.mu.Unlock()
	if done {
		return err
	}
	fi, err := os.Lstat(real)
	if err == nil {
		if p, how := t.problem(fi, above); p != "" {
			fix := fmt.Sprintf("run from another directory, or name the workspace you mean with --root DIR; if %s is yours, ", real)
			if how == "chown" {
				fix += "chown it to yourself (or remove it if you did not put it there)"
			} else {
				fix += "chmod go-w " + real
			}
			err = &UnsafeError{Workspace: ws, Path: real, Problem: p, Fix: fix}
		}
	}
	t.mu.Lock()
	t.ok[key] = err
	t.mu.Unlock()
	return err
}

// checkAbove checks the directories strictly above dir, up to /.
func (t *trust) checkAbove(ws, dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if err := t.check(ws, d, true); err != nil {
			return err
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// CheckWorkspace reports whether dir may be used as a discovered workspace:
// dir itself strictly, the directories above it by the sticky rule.
func CheckWorkspace(dir string) error { return newTrust().workspace(dir) }

func (t *trust) workspace(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if err := t.check(dir, real, false); err != nil {
		return err
	}
	return t.checkAbove(dir, real)
}

// file checks a file read from the discovered workspace root (or, when
// missing is set, the deepest existing directory it would be in, since its
// absence decides that the embedded copy is used instead).
func (t *trust) file(root, p string, missing bool) error {
	if missing {
		d := filepath.Dir(p)
		for {
			if _, err := os.Lstat(d); err == nil {
				break
			}
			if d == filepath.Dir(d) || d == root {
				break
			}
			d = filepath.Dir(d)
		}
		p = d
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil // gone meanwhile: the read reports it
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	if err := t.check(root, real, false); err != nil {
		return err
	}
	if rel, err := filepath.Rel(realRoot, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		// Inside the workspace: every directory up to the root is a lookup
		// directory; the root and above were checked when it was found.
		for d := filepath.Dir(real); d != realRoot && len(d) > len(realRoot); d = filepath.Dir(d) {
			if err := t.check(root, d, false); err != nil {
				return err
			}
		}
		return nil
	}
	// A symlink out of the workspace: its target must be as safe as a
	// workspace of its own.
	if err := t.check(root, filepath.Dir(real), false); err != nil {
		return err
	}
	return t.checkAbove(root, filepath.Dir(real))
}

// fileBase checks a file loaded relative to a playbook named by path outside
// any workspace: the file and every directory from it up to the playbook's
// directory, strictly (not above: the path was the user's).
func (t *trust) fileBase(base, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return err
	}
	if err := t.check(base, real, false); err != nil {
		return err
	}
	for d := filepath.Dir(real); len(d) >= len(realBase); d = filepath.Dir(d) {
		if err := t.check(base, d, false); err != nil {
			return err
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return nil
}
