package bench

import (
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
)

// memFS is the in-memory filesystem of one scale-test server, with what
// mno's SFTP writes need and pkg/sftp's InMemHandler lacks: permission bits
// (chmod of files and directories) and POSIX rename.
type memFS struct {
	mu    sync.Mutex
	nodes map[string]*memNode
}

type memNode struct {
	name  string
	dir   bool
	mode  os.FileMode // permission bits
	data  []byte
	mtime time.Time
}

func newMemFS() *memFS {
	return &memFS{nodes: map[string]*memNode{"/": {name: "/", dir: true, mode: 0o755, mtime: time.Now()}}}
}

func (fs *memFS) handlers() sftp.Handlers {
	return sftp.Handlers{FileGet: fs, FilePut: fs, FileCmd: fs, FileList: fs}
}

func clean(p string) string { return path.Clean("/" + p) }

// parent returns the directory that holds p, or an error.
func (fs *memFS) parentDir(p string) error {
	d, ok := fs.nodes[path.Dir(p)]
	switch {
	case !ok:
		return os.ErrNotExist
	case !d.dir:
		return os.ErrInvalid
	}
	return nil
}

func (fs *memFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.nodes[clean(r.Filepath)]
	if !ok {
		return nil, os.ErrNotExist
	}
	if n.dir {
		return nil, os.ErrInvalid
	}
	return strings.NewReader(string(n.data)), nil
}

func (fs *memFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	p := clean(r.Filepath)
	fl := r.Pflags()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.nodes[p]
	switch {
	case ok && fl.Creat && fl.Excl:
		return nil, os.ErrExist
	case ok && n.dir:
		return nil, os.ErrInvalid
	case ok && fl.Trunc:
		n.data, n.mtime = nil, time.Now()
	case !ok && !fl.Creat:
		return nil, os.ErrNotExist
	case !ok:
		if err := fs.parentDir(p); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		if r.AttrFlags().Permissions {
			mode = r.Attributes().FileMode().Perm()
		}
		n = &memNode{name: path.Base(p), mode: mode, mtime: time.Now()}
		fs.nodes[p] = n
	}
	return &memWriter{fs: fs, n: n}, nil
}

type memWriter struct {
	fs *memFS
	n  *memNode
}

func (w *memWriter) WriteAt(b []byte, off int64) (int, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if end := off + int64(len(b)); end > int64(len(w.n.data)) {
		w.n.data = append(w.n.data, make([]byte, end-int64(len(w.n.data)))...)
	}
	copy(w.n.data[off:], b)
	w.n.mtime = time.Now()
	return len(b), nil
}

func (fs *memFS) Filecmd(r *sftp.Request) error {
	p := clean(r.Filepath)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.nodes[p]
	switch r.Method {
	case "Setstat":
		if !ok {
			return os.ErrNotExist
		}
		if r.AttrFlags().Permissions {
			n.mode = r.Attributes().FileMode().Perm()
		}
		if r.AttrFlags().Size && !n.dir {
			n.data = n.data[:min(len(n.data), int(r.Attributes().Size))]
		}
		return nil
	case "Rename":
		if _, exists := fs.nodes[clean(r.Target)]; exists {
			return os.ErrExist
		}
		return fs.rename(p, clean(r.Target))
	case "Mkdir":
		if ok {
			return os.ErrExist
		}
		if err := fs.parentDir(p); err != nil {
			return err
		}
		fs.nodes[p] = &memNode{name: path.Base(p), dir: true, mode: 0o755, mtime: time.Now()}
		return nil
	case "Rmdir":
		if !ok || !n.dir {
			return os.ErrNotExist
		}
		for q := range fs.nodes {
			if strings.HasPrefix(q, p+"/") {
				return os.ErrInvalid
			}
		}
		delete(fs.nodes, p)
		return nil
	case "Remove":
		if !ok || n.dir {
			return os.ErrNotExist
		}
		delete(fs.nodes, p)
		return nil
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename replaces the target, as rename(2) does.
func (fs *memFS) PosixRename(r *sftp.Request) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.rename(clean(r.Filepath), clean(r.Target))
}

func (fs *memFS) rename(from, to string) error {
	n, ok := fs.nodes[from]
	if !ok {
		return os.ErrNotExist
	}
	if n.dir {
		return sftp.ErrSSHFxOpUnsupported
	}
	if err := fs.parentDir(to); err != nil {
		return err
	}
	if t, ok := fs.nodes[to]; ok && t.dir {
		return os.ErrInvalid
	}
	delete(fs.nodes, from)
	n.name = path.Base(to)
	fs.nodes[to] = n
	return nil
}

func (fs *memFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := clean(r.Filepath)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.nodes[p]
	if !ok {
		return nil, os.ErrNotExist
	}
	switch r.Method {
	case "Stat", "Lstat":
		return listerAt{n.info()}, nil
	case "List":
		if !n.dir {
			return nil, os.ErrInvalid
		}
		var out listerAt
		for q, c := range fs.nodes {
			if q != "/" && path.Dir(q) == p {
				out = append(out, c.info())
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
		return out, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// info snapshots n (callers hold the lock).
func (n *memNode) info() os.FileInfo {
	fi := memInfo{name: n.name, size: int64(len(n.data)), mode: n.mode, mtime: n.mtime}
	if n.dir {
		fi.mode |= os.ModeDir
	}
	return fi
}

type memInfo struct {
	name  string
	size  int64
	mode  os.FileMode
	mtime time.Time
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() os.FileMode  { return i.mode }
func (i memInfo) ModTime() time.Time { return i.mtime }
func (i memInfo) IsDir() bool        { return i.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}
