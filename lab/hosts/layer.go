package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// overlayDirs are the directories every host sees as copy-on-write overlays.
// Each is mounted with the host's upper layer on top of the lab's template
// layer (the files all hosts share: accounts, sudoers, shims, homes) on top of
// this machine's directory, except freshDirs, which do not show this machine's
// directory (its /root holds its own keys, caches and shell setup). /tmp and
// /run are fresh tmpfs.
var (
	overlayDirs = []string{"/etc", "/root", "/home", "/opt", "/srv", "/var", "/usr/local"}
	freshDirs   = []string{"/root"}
)

// overlay is one overlaid directory that exists on this machine.
type overlay struct {
	path  string // "/usr/local"
	name  string // "usr-local": its directory in each layer and under work/
	info  fs.FileInfo
	fresh bool // the machine's directory is not a layer
}

func findOverlays() []overlay {
	var out []overlay
	for _, p := range overlayDirs {
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue // nothing to overlay (a symlink would be followed to another overlay)
		}
		out = append(out, overlay{
			path:  p,
			name:  strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "-"),
			info:  fi,
			fresh: slices.Contains(freshDirs, p),
		})
	}
	return out
}

// layer is one overlayfs layer of every overlaid directory, filled before the
// hosts mount it: dir/NAME holds the layer's part of the directory called NAME
// (see overlay.name). Files written here shadow the layers below; directories
// get the mode and owner of the machine's directory at the same path, as a
// copy-up would.
type layer struct {
	dir      string
	overlays []overlay
	made     map[string]bool
}

func newLayer(dir string, overlays []overlay) (*layer, error) {
	l := &layer{dir: dir, overlays: overlays, made: map[string]bool{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, o := range overlays {
		if err := mkdirLike(filepath.Join(dir, o.name), o.info); err != nil {
			return nil, err
		}
		l.made[o.path] = true
	}
	return l, nil
}

// path maps a path inside the hosts to its place in the layer.
func (l *layer) path(p string) (string, error) {
	p = path.Clean(p)
	for _, o := range l.overlays {
		if within(p, o.path) {
			return filepath.Join(l.dir, o.name, strings.TrimPrefix(p, o.path)), nil
		}
	}
	return "", fmt.Errorf("hosts: %s is not under an overlaid directory", p)
}

func (l *layer) fresh(p string) bool {
	for _, o := range l.overlays {
		if within(p, o.path) {
			return o.fresh
		}
	}
	return false
}

// parents makes the directories above p.
func (l *layer) parents(p string) error {
	dir := path.Dir(path.Clean(p))
	if l.made[dir] {
		return nil
	}
	if err := l.parents(dir); err != nil {
		return err
	}
	lp, err := l.path(dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() && !l.fresh(dir) {
		err = mkdirLike(lp, fi)
	} else {
		err = mkdirOwned(lp, 0o755, 0, 0)
	}
	if err != nil {
		return err
	}
	l.made[dir] = true
	return nil
}

// prepare makes p's parents and returns p's place in the layer.
func (l *layer) prepare(p string) (string, error) {
	if err := l.parents(p); err != nil {
		return "", err
	}
	return l.path(p)
}

// mkdir makes directory p with the given mode and owner.
func (l *layer) mkdir(p string, mode fs.FileMode, uid, gid int) error {
	lp, err := l.prepare(p)
	if err != nil {
		return err
	}
	l.made[path.Clean(p)] = true
	return mkdirOwned(lp, mode, uid, gid)
}

func (l *layer) writeFile(p string, data []byte, mode fs.FileMode, uid, gid int) error {
	lp, err := l.prepare(p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(lp, data, mode.Perm()); err != nil {
		return err
	}
	if err := os.Chmod(lp, mode); err != nil {
		return err
	}
	return os.Lchown(lp, uid, gid)
}

func (l *layer) symlink(target, p string) error {
	lp, err := l.prepare(p)
	if err != nil {
		return err
	}
	return os.Symlink(target, lp)
}

// whiteout hides p of the layers below.
func (l *layer) whiteout(p string) error {
	lp, err := l.prepare(p)
	if err != nil {
		return err
	}
	return mkWhiteout(lp)
}

// opaque hides what the layers below have inside directory p.
func (l *layer) opaque(p string) error {
	lp, err := l.path(p)
	if err != nil {
		return err
	}
	return setOpaque(lp)
}

func mkdirLike(p string, fi fs.FileInfo) error {
	uid, gid := 0, 0
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	return mkdirOwned(p, fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky), uid, gid)
}

func mkdirOwned(p string, mode fs.FileMode, uid, gid int) error {
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Lchown(p, uid, gid)
}
