// Package loader resolves and loads Starlark modules for one run.
//
//	load("//roles/x.star", ...)  from the workspace root, else the embedded roles/
//	load("x.star", ...)          relative to the loading file, same fallback
//
// The workspace root is --root, or the nearest directory above the playbook
// that holds playbooks/ or roles/ — used only when it is safe (see trust.go).
// Files on disk override the copies embedded in the binary, so users
// customise roles by editing files. load() and template files stay inside the
// workspace (or the directory of a playbook named by path) and the embedded
// files: absolute paths and ../ escapes are refused unless they lead into a
// directory allowed with --allow-read. Each module is executed once per run
// (one cache per Loader); a load cycle is an error naming the cycle.
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
	// Allowed marks a file outside the workspace read through --allow-read.
	Allowed bool
	Data    []byte
}

// Loader resolves and executes modules. It is safe for concurrent use.
type Loader struct {
	root        string
	cwd         string
	embedded    fs.FS
	predeclared starlark.StringDict
	// archive returns embedded's precompiled programs (see precompile.go), nil if none.
	archive func() *archive
	// trust checks every file read from a discovered root; nil for an
	// explicit --root.
	trust *trust
	// base is the directory of a playbook named by path outside any
	// workspace: its relative loads stay inside it.
	base     string
	playbook string   // that playbook
	allow    []string // --allow-read directories (absolute, clean)
	note     string   // how the playbook argument was resolved, when not literally

	mu      sync.Mutex
	cache   map[string]*entry
	sources map[string]*Source // by Display
	order   []*Source          // in the order first read
}

// Option configures a Loader.
type Option func(*Loader)

// Discovered marks the root as found by DiscoverRoot rather than given with
// --root: every file read from it is checked (owner and mode) as well.
func Discovered() Option { return func(l *Loader) { l.trust = newTrust() } }

// AllowRead lets load() and template files read files under dirs too (the
// explicit way out of the workspace, --allow-read DIR).
func AllowRead(dirs ...string) Option {
	return func(l *Loader) {
		for _, d := range dirs {
			if abs, err := filepath.Abs(d); err == nil {
				l.allow = append(l.allow, abs)
			}
		}
	}
}

type entry struct {
	done    chan struct{}
	globals starlark.StringDict
	err     error
}

// New returns a loader. root is the workspace root ("" for none); embedded
// holds playbooks/ and roles/ at its top.
func New(root string, embedded fs.FS, predeclared starlark.StringDict, opts ...Option) *Loader {
	cwd, _ := os.Getwd()
	if root != "" {
		if abs, err := filepath.Abs(root); err == nil {
			root = abs
		}
	}
	l := &Loader{root: root, cwd: cwd, embedded: embedded, predeclared: predeclared, archive: archiveOf(embedded),
		cache: map[string]*entry{}, sources: map[string]*Source{}}
	for _, o := range opts {
		o(l)
	}
	if root == "" {
		l.trust = nil
	}
	return l
}

// Root returns the workspace root, "" if none.
func (l *Loader) Root() string { return l.root }

// DiscoverRoot returns the workspace for dir: the nearest directory at or
// above it holding playbooks/ or roles/ ("" when there is none), or an
// *UnsafeError when that directory is not safe to run code from.
func DiscoverRoot(dir string) (string, error) {
	root := FindRoot(dir)
	if root == "" {
		return "", nil
	}
	if err := CheckWorkspace(root); err != nil {
		return "", err
	}
	return root, nil
}

// FindRoot returns the nearest directory at or above dir that holds
// playbooks/ or roles/, or "". It does not check that it is safe: use
// DiscoverRoot for a root to load code from.
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
//
// A path that is not on disk resolves like the bare name it ends in
// (playbooks/add-vps.star and add-vps.star as add-vps; roles/x.star as the
// role), so an installed binary runs `mno run playbooks/add-vps.star` and
// `mno run sync.star` from any directory; Note says so. A name that is not
// found gets the nearest names.
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
		switch {
		case err == nil:
			src := l.diskSource(abs, data)
			if src.Logical == "" {
				// Outside any workspace: its directory is where its
				// relative loads may read.
				l.base, l.playbook = filepath.Dir(abs), abs
			} else if err := l.checkTrust(abs, false); err != nil {
				return nil, err
			}
			return l.remember(src), nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("playbook %s: %v", arg, err)
		}
		logical, name := logicalFor(arg)
		src, tried, err := l.find(logical)
		if err != nil {
			return nil, err
		}
		if src == nil {
			return nil, l.notFound(arg, name, append([]string{arg}, tried...))
		}
		l.note = fmt.Sprintf("%s is not a file here: running %s", arg, src.Display)
		return l.remember(src), nil
	}
	logical := "playbooks/" + arg + ".star"
	src, tried, err := l.find(logical)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, l.notFound(arg, arg, tried)
	}
	return l.remember(src), nil
}

// logicalFor maps a playbook path that is not on disk to the workspace path
// it stands for, and the name to suggest from.
func logicalFor(arg string) (logical, name string) {
	p := path.Clean(filepath.ToSlash(arg))
	base := strings.TrimSuffix(path.Base(p), ".star")
	if path.Base(path.Dir(p)) == "roles" {
		return "roles/" + base + ".star", base
	}
	return "playbooks/" + base + ".star", base
}

// notFound explains a playbook that is nowhere, with the nearest names.
func (l *Loader) notFound(arg, name string, tried []string) error {
	names := l.Playbooks()
	msg := fmt.Sprintf("playbook %q not found (looked in %s)", arg, strings.Join(tried, ", "))
	if near := Nearest(name, names, 3); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	}
	return fmt.Errorf("%s\nplaybooks: %s", msg, strings.Join(names, ", "))
}

// Note says how the playbook argument was resolved when it was not taken
// literally (a path that is not on disk), else "".
func (l *Loader) Note() string { return l.note }

// Playbooks lists the playbook names a bare name can reach: the workspace's
// and the embedded ones.
func (l *Loader) Playbooks() []string {
	seen := map[string]bool{}
	var names []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if l.root != "" {
		ents, _ := os.ReadDir(filepath.Join(l.root, "playbooks"))
		for _, e := range ents {
			if n, ok := strings.CutSuffix(e.Name(), ".star"); ok && !strings.HasSuffix(n, "_test") {
				add(n)
			}
		}
	}
	for _, n := range l.EmbeddedPlaybooks() {
		add(n)
	}
	sort.Strings(names)
	return names
}

// Nearest returns up to max names closest to name by edit distance, among
// those close enough to be a typo of it.
func Nearest(name string, names []string, max int) []string {
	type cand struct {
		n string
		d int
	}
	var cs []cand
	limit := 2 + len(name)/4
	for _, n := range names {
		d := editDistance(strings.ToLower(name), strings.ToLower(n))
		if d <= limit || strings.HasPrefix(n, name) && len(name) >= 3 {
			cs = append(cs, cand{n, d})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	var out []string
	for i := 0; i < len(cs) && i < max; i++ {
		out = append(out, cs[i].n)
	}
	return out
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
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
			if err := l.checkTrust(p, false); err != nil {
				return nil, nil, err
			}
			return l.diskSource(p, data), nil, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s: %v", l.display(p), err)
		}
		// Its absence decides: the directory it would be in must be safe.
		if err := l.checkTrust(p, true); err != nil {
			return nil, nil, err
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

// checkTrust checks a file of a discovered root (nothing for --root).
func (l *Loader) checkTrust(p string, missing bool) error {
	if l.trust == nil || l.root == "" {
		return nil
	}
	return l.trust.file(l.root, p, missing)
}

func (l *Loader) diskSource(abs string, data []byte) *Source {
	s := &Source{Key: abs, Display: l.display(abs), Path: abs, Data: data}
	if l.root != "" {
		if rel, ok := within(l.root, abs); ok {
			s.Logical = filepath.ToSlash(rel)
		}
	}
	return s
}

// within reports whether p is dir or below it, and the relative path.
func within(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

func (l *Loader) display(abs string) string {
	if l.cwd != "" {
		if rel, ok := within(l.cwd, abs); ok {
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
	l.order = append(l.order, s)
	return s
}

// FromDisk lists the files read from disk so far (playbook, loads, template
// files), in the order first read, by display name.
func (l *Loader) FromDisk() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.order {
		if !s.Embedded {
			name := s.Display
			if s.Allowed {
				name += " (--allow-read)"
			}
			out = append(out, name)
		}
	}
	return out
}

// SourceOf returns the source with the given display name, if loaded.
func (l *Loader) SourceOf(display string) *Source {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sources[display]
}

// outside explains a path that leaves the workspace, unless --allow-read
// lets it in; allowed reports that it did.
func (l *Loader) confine(module, p string) (allowed bool, err error) {
	for _, base := range []string{l.root, l.base} {
		if base != "" {
			if _, ok := within(base, p); ok {
				return false, nil
			}
		}
	}
	for _, d := range l.allow {
		if _, ok := within(d, p); ok {
			return true, nil
		}
	}
	where := "the workspace"
	switch {
	case l.root != "":
		where = "the workspace " + l.root
	case l.base != "":
		where = "the playbook's directory " + l.base
	}
	what := p
	if module != p {
		what = module + ": " + p
	}
	return false, fmt.Errorf("%s is outside %s; load() and template files read only the workspace and the files embedded in mno "+
		"(pass --allow-read %s to allow it; such reads are listed in the run's header and journal)", what, where, filepath.Dir(p))
}

// readDisk reads a disk file for a load or template file, confined.
func (l *Loader) readDisk(module, p string) (*Source, error) {
	allowed, err := l.confine(module, p)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if !allowed {
		if _, in := within(l.root, p); in && l.root != "" {
			if err := l.checkTrust(p, false); err != nil {
				return nil, err
			}
		} else if _, in := within(l.base, p); in && l.base != "" && p != l.playbook {
			// Loaded by a playbook named by path: that file was the user's
			// choice, the ones next to it were not.
			if err := newTrust().fileBase(l.base, p); err != nil {
				return nil, err
			}
		}
	}
	s := l.diskSource(p, data)
	s.Allowed = allowed
	return l.remember(s), nil
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
		if strings.HasPrefix(logical, "../") || logical == ".." || strings.HasPrefix(logical, "/") {
			return nil, fmt.Errorf("%s: escapes the workspace root", module)
		}
	case filepath.IsAbs(module):
		src, err := l.readDisk(module, filepath.Clean(module))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file", module)
		}
		return src, err
	default:
		if from != nil && !from.Embedded {
			p := filepath.Join(filepath.Dir(from.Path), filepath.FromSlash(module))
			src, err := l.readDisk(module, p)
			if err == nil {
				return src, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			if from.Logical == "" {
				return nil, fmt.Errorf("%s: no such file", l.display(p))
			}
		}
		if from == nil || from.Logical == "" {
			return nil, fmt.Errorf("%s: cannot resolve a relative path here", module)
		}
		logical = path.Clean(path.Join(path.Dir(from.Logical), module))
		if strings.HasPrefix(logical, "../") || logical == ".." {
			return nil, fmt.Errorf("%s: escapes the workspace (from %s); load files of the workspace or the embedded ones", module, from.Display)
		}
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
// Private reports whether the file is on disk and not readable by others.
func (l *Loader) ReadFile(thread *starlark.Thread, p string) (src *Source, private bool, err error) {
	from := l.callerSource(thread)
	src, err = l.Resolve(from, p)
	if err != nil {
		return nil, false, err
	}
	if !src.Embedded {
		if fi, err := os.Stat(src.Path); err == nil && fi.Mode().Perm()&0o004 == 0 {
			private = true
		}
	}
	return src, private, nil
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
	if prog := l.precompiled(src); prog != nil {
		g, err := prog.Init(thread, l.predeclared)
		g.Freeze()
		return g, err
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
