// Package loader resolves and loads Starlark modules for one run.
//
//	load("//roles/x.star", ...)  from the workspace root, else the embedded roles/
//	load("x.star", ...)          relative to the loading file, same fallback
//
// The workspace root is --root, or the nearest directory above the playbook
// that holds playbooks/ or roles/. Files on disk override the copies embedded
// in the binary, so users customise roles by editing files. Each module is
// executed once per run (one cache per Loader); a load cycle is an error
// naming the cycle.
package loader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// EmbeddedPrefix marks embedded files in positions and messages.
const EmbeddedPrefix = "embedded:"

// FileOptions are the Starlark dialect options of every mno file.
var FileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}

// Source is one resolved Starlark (or template) file.
type Source struct {
	Key      string // cache key: absolute path, or EmbeddedPrefix+logical
	Display  string // name in positions and messages
	Logical  string // slash path relative to the workspace root, "" if outside it
	Path     string // absolute path on disk, "" for embedded files
	Embedded bool
	Data     []byte
}

// Loader resolves and executes modules. It is safe for concurrent use.
type Loader struct {
	root        string
	cwd         string
	embedded    fs.FS
	predeclared starlark.StringDict

	mu      sync.Mutex
	cache   map[string]*entry
	sources map[string]*Source // by Display
}

type entry struct {
	done    chan struct{}
	globals starlark.StringDict
	err     error
}

// New returns a loader. root is the workspace root ("" for none); embedded
// holds playbooks/ and roles/ at its top.
func New(root string, embedded fs.FS, predeclared starlark.StringDict) *Loader {
	cwd, _ := os.Getwd()
	if root != "" {
		if abs, err := filepath.Abs(root); err == nil {
			root = abs
		}
	}
	return &Loader{root: root, cwd: cwd, embedded: embedded, predeclared: predeclared,
		cache: map[string]*entry{}, sources: map[string]*Source{}}
}

// Root returns the workspace root, "" if none.
func (l *Loader) Root() string { return l.root }

// FindRoot returns the nearest directory at or above dir that holds
// playbooks/ or roles/, or "".
func FindRoot(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		for _, sub := range []string{"playbooks", "roles"} {
			if fi, err := os.Stat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// ResolvePlaybook finds the playbook named by arg: a path (anything with a
// slash or a .star suffix), a workspace path ("//roles/vps_test.star", from
// the workspace root, else embedded), or a bare name looked up in the
// workspace's playbooks/ and then in the embedded playbooks/.
func (l *Loader) ResolvePlaybook(arg string) (*Source, error) {
	if strings.HasPrefix(arg, "//") {
		return l.Resolve(nil, arg)
	}
	if strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".star") {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(abs)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("playbook %s: no such file", arg)
			}
			return nil, fmt.Errorf("playbook %s: %v", arg, err)
		}
		return l.remember(l.diskSource(abs, data)), nil
	}
	logical := "playbooks/" + arg + ".star"
	src, tried, err := l.find(logical)
	if err != nil {
		return nil, err
	}
	if src == nil {
		names := l.EmbeddedPlaybooks()
		return nil, fmt.Errorf("playbook %q not found (looked in %s); embedded playbooks: %s",
			arg, strings.Join(tried, ", "), strings.Join(names, ", "))
	}
	return l.remember(src), nil
}

// EmbeddedPlaybooks lists the names of the embedded playbooks.
func (l *Loader) EmbeddedPlaybooks() []string {
	var names []string
	if l.embedded == nil {
		return nil
	}
	ents, _ := fs.ReadDir(l.embedded, "playbooks")
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".star"); ok && !strings.HasSuffix(n, "_test") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// find looks up a root-relative logical path on disk, then in the embedded FS.
func (l *Loader) find(logical string) (*Source, []string, error) {
	var tried []string
	if l.root != "" {
		p := filepath.Join(l.root, filepath.FromSlash(logical))
		data, err := os.ReadFile(p)
		if err == nil {
			return l.diskSource(p, data), nil, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s: %v", l.display(p), err)
		}
		tried = append(tried, l.display(p))
	}
	if l.embedded != nil && !strings.HasPrefix(logical, "../") {
		data, err := fs.ReadFile(l.embedded, logical)
		if err == nil {
			return &Source{Key: EmbeddedPrefix + logical, Display: EmbeddedPrefix + logical,
				Logical: logical, Embedded: true, Data: data}, nil, nil
		}
		tried = append(tried, "the embedded "+logical)
	}
	return nil, tried, nil
}

func (l *Loader) diskSource(abs string, data []byte) *Source {
	s := &Source{Key: abs, Display: l.display(abs), Path: abs, Data: data}
	if l.root != "" {
		if rel, err := filepath.Rel(l.root, abs); err == nil && !strings.HasPrefix(rel, "..") {
			s.Logical = filepath.ToSlash(rel)
		}
	}
	return s
}

func (l *Loader) display(abs string) string {
	if l.cwd != "" {
		if rel, err := filepath.Rel(l.cwd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return abs
}

func (l *Loader) remember(s *Source) *Source {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.sources[s.Display]; ok {
		return old
	}
	l.sources[s.Display] = s
	return s
}

// SourceOf returns the source with the given display name, if loaded.
func (l *Loader) SourceOf(display string) *Source {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sources[display]
}

// Resolve resolves module as loaded from the file from.
func (l *Loader) Resolve(from *Source, module string) (*Source, error) {
	if module == "" {
		return nil, fmt.Errorf("empty module name")
	}
	var logical string
	switch {
	case strings.HasPrefix(module, "//"):
		logical = path.Clean(strings.TrimPrefix(module, "//"))
		if strings.HasPrefix(logical, "../") || logical == ".." {
			return nil, fmt.Errorf("%s: escapes the workspace root", module)
		}
	case filepath.IsAbs(module):
		data, err := os.ReadFile(module)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", module, notExist(err))
		}
		return l.remember(l.diskSource(module, data)), nil
	default:
		if from != nil && !from.Embedded {
			p := filepath.Join(filepath.Dir(from.Path), filepath.FromSlash(module))
			data, err := os.ReadFile(p)
			if err == nil {
				return l.remember(l.diskSource(p, data)), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: %v", l.display(p), err)
			}
			if from.Logical == "" {
				return nil, fmt.Errorf("%s: no such file", l.display(p))
			}
		}
		if from == nil || from.Logical == "" {
			return nil, fmt.Errorf("%s: cannot resolve a relative path here", module)
		}
		logical = path.Clean(path.Join(path.Dir(from.Logical), module))
	}
	src, tried, err := l.find(logical)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("%s: not found (looked in %s)", module, strings.Join(tried, ", "))
	}
	return l.remember(src), nil
}

func notExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no such file")
	}
	return err
}

// ReadFile reads path relative to the file currently executing on thread
// (innermost Starlark frame), with the same resolution rules as load.
func (l *Loader) ReadFile(thread *starlark.Thread, p string) (string, []byte, error) {
	from := l.callerSource(thread)
	src, err := l.Resolve(from, p)
	if err != nil {
		return "", nil, err
	}
	return src.Display, src.Data, nil
}

func (l *Loader) callerSource(thread *starlark.Thread) *Source {
	for i := 0; i < thread.CallStackDepth(); i++ {
		fn := thread.CallFrame(i).Pos.Filename()
		if fn == "<builtin>" {
			continue
		}
		if s := l.SourceOf(fn); s != nil {
			return s
		}
	}
	return nil
}

const stackKey = "mno.loadstack"

// Load implements starlark.Thread.Load.
func (l *Loader) Load(thread *starlark.Thread, module string) (starlark.StringDict, error) {
	src, err := l.Resolve(l.callerSource(thread), module)
	if err != nil {
		return nil, err
	}
	return l.Exec(thread, src)
}

// Exec executes src once per run and returns its frozen globals.
func (l *Loader) Exec(thread *starlark.Thread, src *Source) (starlark.StringDict, error) {
	stack, _ := thread.Local(stackKey).(*[]string)
	if stack == nil {
		stack = new([]string)
		thread.SetLocal(stackKey, stack)
	}
	for i, k := range *stack {
		if k == src.Key {
			var names []string
			for _, k2 := range (*stack)[i:] {
				names = append(names, l.displayOfKey(k2))
			}
			names = append(names, src.Display)
			return nil, fmt.Errorf("load cycle: %s", strings.Join(names, " → "))
		}
	}

	l.mu.Lock()
	e, ok := l.cache[src.Key]
	if ok {
		l.mu.Unlock()
		<-e.done
		return e.globals, e.err
	}
	e = &entry{done: make(chan struct{})}
	l.cache[src.Key] = e
	l.mu.Unlock()

	*stack = append(*stack, src.Key)
	e.globals, e.err = l.execSource(thread, src)
	*stack = (*stack)[:len(*stack)-1]
	close(e.done)
	return e.globals, e.err
}

func (l *Loader) displayOfKey(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for d, s := range l.sources {
		if s.Key == key {
			return d
		}
	}
	return key
}

func (l *Loader) execSource(thread *starlark.Thread, src *Source) (starlark.StringDict, error) {
	if err := CheckUTF8(src); err != nil {
		return nil, err
	}
	return starlark.ExecFileOptions(FileOptions, thread, src.Display, src.Data, l.predeclared)
}

// CheckUTF8 reports the position of the first invalid UTF-8 byte in src.
func CheckUTF8(src *Source) error {
	if utf8.Valid(src.Data) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(src.Data); {
		r, size := utf8.DecodeRune(src.Data[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Errorf("%s:%d:%d: file is not valid UTF-8 (byte 0x%02x)", src.Display, line, col, src.Data[i])
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// InitThread prepares a thread for loading; call it before execution starts.
func InitThread(thread *starlark.Thread) {
	if thread.Local(stackKey) == nil {
		thread.SetLocal(stackKey, new([]string))
	}
}

// Virtual registers in-memory content as if it were the file at path, so
// relative loads and template.file resolve from path's directory. Tests use
// it to run one chunk of a script file at its original line numbers.
func (l *Loader) Virtual(path string, data []byte) *Source {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	s := l.diskSource(abs, data)
	l.mu.Lock()
	l.sources[s.Display] = s
	l.mu.Unlock()
	return s
}
