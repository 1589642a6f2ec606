package hosts

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// The host's files are reached through /proc/PID/root of its sshd: the kernel
// walks the host's own mounts from there, and RESOLVE_IN_ROOT keeps absolute
// symlinks and ".." inside the host, so reads see exactly what the host sees
// and writes go through its overlays.

func (h *Host) rootFD() (int, error) {
	if !h.running() {
		return -1, fmt.Errorf("hosts: %s is not running", h.Name)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/root", h.PID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("hosts: %s: %w", h.Name, err)
	}
	return fd, nil
}

// openIn opens p inside the host.
func (h *Host) openIn(p string, flags int, mode uint32) (*os.File, error) {
	root, err := h.rootFD()
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	p = path.Clean("/" + p)
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT,
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: h.Name + ":" + p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

func (h *Host) readFileIn(p string) ([]byte, error) {
	f, err := h.openIn(p, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (h *Host) statIn(p string) (fs.FileInfo, error) {
	f, err := h.openIn(p, unix.O_PATH, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// writeFileIn replaces p atomically: readers see the old file or the new one.
func (h *Host) writeFileIn(p string, data []byte, perm fs.FileMode) error {
	p = path.Clean("/" + p)
	dir, err := h.openIn(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	tmp := tempName()
	fd, err := unix.Openat(int(dir.Fd()), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return &fs.PathError{Op: "create", Path: h.Name + ":" + p, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(int(dir.Fd()), tmp, int(dir.Fd()), path.Base(p))
	}
	if err != nil {
		_ = unix.Unlinkat(int(dir.Fd()), tmp, 0)
		return &fs.PathError{Op: "write", Path: h.Name + ":" + p, Err: err}
	}
	return nil
}

func (h *Host) mkdirAllIn(p string, perm fs.FileMode) error {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	if f, err := h.openIn(p, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
		return f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := h.mkdirAllIn(path.Dir(p), perm); err != nil {
		return err
	}
	dir, err := h.openIn(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := unix.Mkdirat(int(dir.Fd()), path.Base(p), uint32(perm.Perm())); err != nil && err != unix.EEXIST {
		return &fs.PathError{Op: "mkdir", Path: h.Name + ":" + p, Err: err}
	}
	return unix.Fchmodat(int(dir.Fd()), path.Base(p), uint32(perm.Perm()), 0)
}

// symlinkIn makes p a symlink to target, replacing whatever p was.
func (h *Host) symlinkIn(target, p string) error {
	p = path.Clean("/" + p)
	if err := h.mkdirAllIn(path.Dir(p), 0o755); err != nil {
		return err
	}
	dir, err := h.openIn(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	tmp := tempName()
	if err := unix.Symlinkat(target, int(dir.Fd()), tmp); err != nil {
		return &fs.PathError{Op: "symlink", Path: h.Name + ":" + p, Err: err}
	}
	if err := unix.Renameat(int(dir.Fd()), tmp, int(dir.Fd()), path.Base(p)); err != nil {
		_ = unix.Unlinkat(int(dir.Fd()), tmp, 0)
		return &fs.PathError{Op: "symlink", Path: h.Name + ":" + p, Err: err}
	}
	return nil
}

func tempName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return ".mno-lab-" + hex.EncodeToString(b)
}
