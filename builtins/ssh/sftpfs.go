package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/pkg/sftp"
)

// sftpFS is the remoteFS of a call without sudo: SFTP as the login user
// (see remotefs.go).
type sftpFS struct{ *host }

// sftpEdit is a probed file waiting for sftpFS.write: nothing is held open
// between the probe and the write.
type sftpEdit struct{ sftpFS }

func (sftpEdit) close()       {}
func (sftpEdit) note() string { return "" }

func (h sftpFS) describe(p string) string { return p }

func (h sftpFS) stat(ctx context.Context, p string, follow bool) (*fileInfo, error) {
	info, err := h.statRaw(p, !follow)
	if err != nil || info == nil {
		return nil, err
	}
	return info, h.fillNames(ctx, info)
}

func (h sftpFS) isDir(ctx context.Context, p string) (bool, error) {
	// Only whether it is a directory matters: no owner names.
	info, err := h.statRaw(p, false)
	return info != nil && info.isDir, err
}

func (h sftpFS) read(ctx context.Context, p string) ([]byte, bool, error) { return h.readAll(p) }

func (h sftpFS) lprobe(ctx context.Context, p string, limit int64) (probe, error) {
	var pr probe
	var err error
	pr.info, err = h.statRaw(p, true)
	if err == nil && pr.info != nil && pr.info.isRegular && pr.info.size <= limit {
		pr.content, _, err = h.readAll(p)
		pr.full = err == nil
	}
	return pr, err
}

func (h sftpFS) openEdit(ctx context.Context, p string, limit, sumSize int64) (fileEdit, probe, error) {
	pr, err := h.probe(ctx, p, limit, sumSize)
	if err != nil {
		return nil, pr, err
	}
	return sftpEdit{h}, pr, nil
}

func (h sftpFS) names(ctx context.Context, info *fileInfo) error { return h.fillNames(ctx, info) }

func (h sftpFS) mkdir(ctx context.Context, p string, mode uint32, owner, group string) error {
	cl, err := h.c.sftpClient()
	if err != nil {
		return err
	}
	if err := cl.MkdirAll(p); err != nil {
		return h.fsErr("mkdir", p, err)
	}
	if owner != "" || group != "" {
		uid, gid, err := h.wantIDs(ctx, nil, owner, group)
		if err != nil {
			return err
		}
		if err := cl.Chown(p, uid, gid); err != nil {
			return h.ownerErr(p, &writeSpec{owner: owner, group: group}, err)
		}
	}
	return h.fsErr("chmod", p, cl.Chmod(p, os.FileMode(mode&0o777)|setBits(mode)))
}

func (h sftpFS) remove(ctx context.Context, p, what string) error {
	if what == "tree" {
		// SFTP has no recursive remove: the login user's rm -rf.
		return runRemoveScript(ctx, h.host, false, p, what)
	}
	cl, err := h.c.sftpClient()
	if err != nil {
		return err
	}
	if what == "dir" {
		err = cl.RemoveDirectory(p)
	} else {
		err = cl.Remove(p)
	}
	if err != nil {
		return removeErr(p, what, h.fsErr("remove", p, err))
	}
	return nil
}

func (h sftpFS) dirEmpty(ctx context.Context, p string) (bool, error) {
	cl, err := h.c.sftpClient()
	if err != nil {
		return false, err
	}
	ents, err := cl.ReadDir(p)
	if err != nil {
		return false, h.fsErr("list", p, err)
	}
	return len(ents) == 0, nil
}

func fromFileInfo(fi os.FileInfo) *fileInfo {
	info := &fileInfo{
		isDir:     fi.IsDir(),
		isLink:    fi.Mode()&os.ModeSymlink != 0,
		isRegular: fi.Mode().IsRegular(),
		size:      fi.Size(),
		mtime:     fi.ModTime().Unix(),
	}
	if st, ok := fi.Sys().(*sftp.FileStat); ok {
		info.mode = st.Mode & 0o7777
		info.uid, info.gid = int(st.UID), int(st.GID)
	} else {
		info.mode = uint32(fi.Mode().Perm())
	}
	return info
}

// statRaw stats p (following symlinks unless lstat), without names; nil
// when missing.
func (h sftpFS) statRaw(p string, lstat bool) (*fileInfo, error) {
	cl, err := h.c.sftpClient()
	if err != nil {
		return nil, err
	}
	var fi os.FileInfo
	if lstat {
		fi, err = cl.Lstat(p)
	} else {
		fi, err = cl.Stat(p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, h.fsErr("stat", p, err)
	}
	return fromFileInfo(fi), nil
}

// probe lstats and reads p at the same time (two requests in flight, so
// one round trip's latency). Only a symlink costs a second round trip (the
// stat of its target); knowing it is not one spares write an lstat.
func (h sftpFS) probe(ctx context.Context, p string, limit int64, sumSize int64) (probe, error) {
	cl, err := h.c.sftpClient()
	if err != nil {
		return probe{}, err
	}
	var pr probe
	var statErr, readErr error
	var data []byte
	var wg sync.WaitGroup
	statDone := make(chan struct{})
	wg.Go(func() {
		defer close(statDone)
		pr.link, pr.info, statErr = lstatFollow(cl, p)
	})
	wg.Go(func() {
		data, readErr = readProbed(cl, p, limit, func() *fileInfo { <-statDone; return pr.info })
	})
	wg.Wait()
	if statErr != nil {
		return pr, h.fsErr("stat", p, statErr)
	}
	if pr.info == nil || !pr.info.isRegular {
		return pr, nil
	}
	if readErr != nil {
		return pr, h.fsErr("read", p, readErr)
	}
	if int64(len(data)) <= limit {
		pr.content, pr.full = data, true
		return pr, nil
	}
	if pr.info.size == sumSize {
		pr.sum, err = h.remoteSum(ctx, p)
	}
	return pr, err
}

// lstatFollow lstats p, and stats the target of a symlink; info is nil when
// missing.
func lstatFollow(cl *sftp.Client, p string) (link bool, info *fileInfo, err error) {
	fi, err := cl.Lstat(p)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		link = true
		fi, err = cl.Stat(p)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return link, nil, nil
	case err != nil:
		return link, nil, err
	}
	return link, fromFileInfo(fi), nil
}

// readProbed opens p and reads it once stat (waiting for the stat in flight
// beside it) says it is a regular file: all of it up to limit, or limit+1
// bytes to tell that it is larger.
func readProbed(cl *sftp.Client, p string, limit int64, stat func() *fileInfo) ([]byte, error) {
	f, err := cl.Open(p)
	if err != nil {
		return nil, err
	}
	// Closing the handle need not delay the answer.
	defer func() { go f.Close() }()
	// The stat is in flight meanwhile (same round trip as the open).
	// Reading exactly the size it saw takes one request: reading past
	// it only to be told EOF would cost another round trip.
	info := stat()
	if info == nil || !info.isRegular {
		return nil, nil
	}
	if info.size > limit {
		return readUpTo(f, limit+1)
	}
	data := make([]byte, info.size)
	n, err := io.ReadFull(f, data)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return data[:n], nil // it shrank meanwhile
	}
	return data, err
}

// remoteSum is the hex SHA-256 of p, computed on the host.
func (h sftpFS) remoteSum(ctx context.Context, p string) (string, error) {
	out, err := h.c.exec(ctx, remoteCmd{line: "sha256sum < " + quote(p)})
	if err != nil {
		return "", err
	}
	if out.code != 0 {
		return "", fmt.Errorf("sha256sum %s: %s", p, strings.TrimSpace(string(out.stderr)))
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(string(out.stdout)), " ")
	return sum, nil
}

// readUpTo reads at most max bytes of f: one request for a small file,
// then one large read, which pkg/sftp splits into concurrent requests.
func readUpTo(f *sftp.File, max int64) ([]byte, error) {
	first := int64(32 << 10)
	if first > max {
		first = max
	}
	buf := make([]byte, first)
	n, err := io.ReadFull(f, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return buf[:n], nil
	}
	if err != nil || int64(n) == max {
		return buf[:n], err
	}
	rest := make([]byte, max-int64(n))
	m, err := io.ReadFull(f, rest)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return append(buf[:n], rest[:m]...), err
}

// readAll reads p whole; missing reports a missing file.
func (h sftpFS) readAll(p string) (data []byte, missing bool, err error) {
	cl, err := h.c.sftpClient()
	if err != nil {
		return nil, false, err
	}
	f, err := cl.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, h.fsErr("open", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, h.fsErr("stat", p, err)
	}
	if fi.IsDir() {
		return nil, false, fmt.Errorf("%s is a directory", p)
	}
	var buf bytes.Buffer
	if fi.Size() > 0 {
		buf.Grow(int(fi.Size()))
	}
	if _, err := f.WriteTo(&buf); err != nil {
		return nil, false, h.fsErr("read", p, err)
	}
	return buf.Bytes(), false, nil
}

// stagingDirs are where a temporary file for a file in dir is written, in
// order of preference: next to dir (so watchers of dir see one rename and
// nothing else), then inside dir — removed again after the rename — for a
// dir whose parent is not writable or is another filesystem (statvfs's fsid tells where the server supports it;
// a rename that fails across filesystems falls back too).
func (h sftpFS) stagingDirs(cl *sftp.Client, dir string) []string {
	next := path.Join(path.Dir(dir), ".mno-staging")
	in := path.Join(dir, ".mno-staging")
	if v, ok := h.c.stages.Load(dir); ok {
		return []string{v.(string)}
	}
	if next == in {
		return []string{in}
	}
	if _, ok := cl.HasExtension("statvfs@openssh.com"); ok {
		// Both in flight at once: one round trip.
		var a, b *sftp.StatVFS
		var err1, err2 error
		var wg sync.WaitGroup
		wg.Go(func() { a, err1 = cl.StatVFS(path.Dir(dir)) })
		b, err2 = cl.StatVFS(dir)
		wg.Wait()
		if err1 == nil && err2 == nil && a.Fsid != b.Fsid {
			return []string{in}
		}
	}
	return []string{next, in}
}

// write writes p atomically: temporary file in a staging directory,
// fsync, chown, chmod, rename over p. Nothing is ever written to p itself, so
// a cut connection leaves the old file or the new one. pr is p's probe.
func (h sftpFS) write(ctx context.Context, p string, pr *probe, w *writeSpec) error {
	cl, err := h.c.sftpClient()
	if err != nil {
		return err
	}
	old := pr.info
	if old != nil && pr.link {
		// Write through a symlink to its target, as `>` would.
		if p, err = cl.RealPath(p); err != nil {
			return h.fsErr("resolve", p, err)
		}
	}
	uid, gid, err := h.wantIDs(ctx, old, w.owner, w.group)
	if err != nil {
		return err
	}
	dir := path.Dir(p)
	var lastErr error
	for _, stage := range h.stagingDirs(cl, dir) {
		_, known := h.c.stages.Load(dir)
		use, fresh := stage, false
		if !known {
			var err error
			if use, fresh, err = h.safeStaging(ctx, cl, stage); err != nil {
				lastErr = err
				continue
			}
		}
		err := h.writeVia(cl, use, p, uid, gid, w)
		if err == nil {
			if path.Dir(stage) == dir || fresh {
				// Staged inside the target's own directory (its parent is
				// another filesystem): leave nothing behind there — it may
				// be /etc. Next time it is made again. A fresh one-off
				// directory goes too.
				cl.RemoveDirectory(use)
				return nil
			}
			h.c.stages.Store(dir, stage)
			return nil
		}
		if fresh {
			cl.RemoveDirectory(use)
		}
		if !errors.As(err, new(*stagingError)) {
			return err
		}
		lastErr = err
	}
	return lastErr
}

// safeStaging returns the staging directory to use for stage: stage itself
// when it is a real directory (not a symlink) of the writing user with mode
// 0700 — made so when missing — or else a fresh one next to it (fresh is
// then set: remove it after use). A staging directory someone else owns, or
// can write, or that points elsewhere, would let them swap the temporary
// file before it is renamed over the target.
func (h sftpFS) safeStaging(ctx context.Context, cl *sftp.Client, stage string) (string, bool, error) {
	uid, err := h.lookupID(ctx, false, h.user)
	if err != nil {
		return "", false, err
	}
	fi, err := cl.Lstat(stage)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := h.makeStaging(cl, stage); err != nil {
			return "", false, &stagingError{err}
		}
		if why := stagingProblem(cl, stage, uid); why == "" {
			return stage, false, nil
		}
	case err != nil:
		return "", false, &stagingError{h.fsErr("stat", stage, err)}
	default:
		if why := problemOf(fi, uid); why == "" {
			return stage, false, nil
		}
	}
	// Not ours: a fresh, unpredictable one beside it (mkdir fails if it
	// exists, so nobody can have prepared it).
	dir2 := stage + "." + randomSuffix()
	if err := cl.Mkdir(dir2); err != nil {
		return "", false, &stagingError{h.fsErr("mkdir", dir2, err)}
	}
	if err := cl.Chmod(dir2, 0o700); err != nil {
		cl.RemoveDirectory(dir2)
		return "", false, &stagingError{h.fsErr("chmod", dir2, err)}
	}
	if why := stagingProblem(cl, dir2, uid); why != "" {
		return "", false, &stagingError{fmt.Errorf("staging directory %s %s", dir2, why)}
	}
	return dir2, true, nil
}

func stagingProblem(cl *sftp.Client, dir string, uid int) string {
	fi, err := cl.Lstat(dir)
	if err != nil {
		return err.Error()
	}
	return problemOf(fi, uid)
}

// problemOf says what makes fi unfit as a staging directory of uid, "" if
// nothing.
func problemOf(fi os.FileInfo, uid int) string {
	info := fromFileInfo(fi)
	switch {
	case info.isLink:
		return "is a symlink"
	case !info.isDir:
		return "is not a directory"
	case info.uid != uid:
		return fmt.Sprintf("belongs to uid %d, not the writer (%d)", info.uid, uid)
	case info.mode != 0o700:
		return fmt.Sprintf("has mode %s, not 0700", octal(info.mode))
	}
	return ""
}

// stagingError is a failure that another staging directory may avoid.
type stagingError struct{ err error }

func (e *stagingError) Error() string { return e.err.Error() }
func (e *stagingError) Unwrap() error { return e.err }

func (h sftpFS) writeVia(cl *sftp.Client, stage, p string, uid, gid int, w *writeSpec) (err error) {
	tmp := path.Join(stage, path.Base(p)+"."+randomSuffix()+".tmp")
	// The staging directory was checked (safeStaging) when first used on
	// this connection. The file is created 0600 (openPermWriter) and never
	// over an existing one.
	f, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		if fi, serr := cl.Stat(stage); serr == nil && !fi.IsDir() {
			return &stagingError{fmt.Errorf("%s is not a directory", stage)}
		}
		return &stagingError{h.fsErr("create", tmp, err)}
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			if h.c.alive() == nil {
				cl.Remove(tmp)
			}
		}
	}()
	if _, err := f.ReadFrom(bytes.NewReader(w.content)); err != nil {
		return h.fsErr("write", tmp, err)
	}
	if _, ok := cl.HasExtension("fsync@openssh.com"); ok {
		if err := f.Sync(); err != nil {
			return h.fsErr("fsync", tmp, err)
		}
	}
	if err := h.setAttrs(f, tmp, p, uid, gid, w); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return h.fsErr("close", tmp, err)
	}
	if err := cl.PosixRename(tmp, p); err != nil {
		var se *sftp.StatusError
		if errors.As(err, &se) && se.Code == 4 { // SSH_FX_FAILURE: EXDEV among others
			cl.Remove(tmp)
			done = true
			return &stagingError{h.fsErr("rename", p, err)}
		}
		return h.fsErr("rename", p, err)
	}
	done = true
	return nil
}

// setAttrs gives the temporary file its owner and mode. chown clears setuid
// and setgid, so with those bits chmod must follow it; otherwise both
// requests are in flight at once (one round trip).
func (h sftpFS) setAttrs(f *sftp.File, tmp, p string, uid, gid int, w *writeSpec) error {
	chmod := func() error {
		return h.fsErr("chmod", tmp, f.Chmod(os.FileMode(w.mode)|setBits(w.mode)))
	}
	if uid < 0 && gid < 0 {
		if w.mode == createdFileMode {
			return nil // created so
		}
		return chmod()
	}
	chown := func() error {
		if err := f.Chown(uid, gid); err != nil {
			return h.ownerErr(p, w, err)
		}
		return nil
	}
	if w.mode&0o6000 != 0 {
		if err := chown(); err != nil {
			return err
		}
		return chmod()
	}
	var chmodErr error
	var wg sync.WaitGroup
	wg.Go(func() { chmodErr = chmod() })
	err := chown()
	wg.Wait()
	if err != nil {
		return err
	}
	return chmodErr
}

// setBits maps setuid, setgid and sticky to os.FileMode, which pkg/sftp
// translates back.
func setBits(m uint32) os.FileMode {
	var fm os.FileMode
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// makeStaging makes the staging directory, mode 0700 so no other user sees
// a secret while it is being written.
func (h sftpFS) makeStaging(cl *sftp.Client, stage string) error {
	if err := cl.Mkdir(stage); err != nil {
		if fi, err2 := cl.Stat(stage); err2 == nil && fi.IsDir() {
			return nil // made by a concurrent put
		}
		return h.fsErr("mkdir", stage, err)
	}
	return h.fsErr("chmod", stage, cl.Chmod(stage, 0o700))
}

// wantIDs are the uid and gid a written file gets (-1: leave as created):
// the named owner and group, else those of the file it replaces.
func (h sftpFS) wantIDs(ctx context.Context, old *fileInfo, owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if old != nil {
		uid, gid = old.uid, old.gid
	}
	if owner != "" {
		if uid, err = h.lookupID(ctx, false, owner); err != nil {
			return 0, 0, err
		}
	}
	if group != "" {
		if gid, err = h.lookupID(ctx, true, group); err != nil {
			return 0, 0, err
		}
	}
	// SFTP sets both ids at once; -1 is "unchanged" to the host's chown.
	return uid, gid, nil
}

func (h sftpFS) ownerErr(p string, w *writeSpec, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		if w.owner == "" && w.group == "" {
			return fmt.Errorf("%s: cannot keep the owner of the file it replaces as user %s (pass sudo=True)", p, h.user)
		}
		return fmt.Errorf("%s: user %s may not give files away (pass sudo=True)", p, h.user)
	}
	return h.fsErr("chown", p, err)
}

// fsErr explains an SFTP error; permission problems suggest sudo.
func (h sftpFS) fsErr(op, p string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s %s: permission denied for user %s (pass sudo=True)", op, p, h.user)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: no such file or directory", op, p)
	}
	return h.c.opErr(fmt.Errorf("%s %s: %w", op, p, err))
}
