package engine

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/mno-sh/mno/engine/loader"
)

// Problem is one finding of Check.
type Problem struct {
	Pos string
	Msg string
}

func (p Problem) String() string {
	if p.Pos == "" {
		return p.Msg
	}
	return p.Pos + ": " + p.Msg
}

// fileGlobals are the names, besides the builtins, that files of a kind see
// predeclared: a package that runs such files (scenario: the *_test.star files
// `mno test` runs with a "lab" global) registers them, so the engine need not
// know it.
var (
	fileGlobalsMu sync.Mutex
	fileGlobals   []fileGlobal
)

type fileGlobal struct {
	match func(name string) bool
	names []string
}

// RegisterFileGlobals declares that files whose name match accepts see names
// predeclared, for Check. It is meant to be called from an init function.
func RegisterFileGlobals(match func(name string) bool, names ...string) {
	fileGlobalsMu.Lock()
	defer fileGlobalsMu.Unlock()
	fileGlobals = append(fileGlobals, fileGlobal{match, names})
}

// extraGlobals lists the registered names a file named name sees.
func extraGlobals(name string) []string {
	fileGlobalsMu.Lock()
	defer fileGlobalsMu.Unlock()
	var out []string
	for _, g := range fileGlobals {
		if g.match(name) {
			out = append(out, g.names...)
		}
	}
	return out
}

// Check parses and resolves files without running anything: syntax errors,
// undefined names, missing or cyclic loads, names a load asks for that the
// module does not define, and playbooks without main.
func Check(root string, embedded fs.FS, files []string, allowRead ...string) []Problem {
	predeclared := Predeclared()
	c := &checker{predeclared: predeclared, done: map[string]*checked{}}
	var problems []Problem
	for _, f := range files {
		r, opts, err := Workspace(root, f, allowRead)
		if err != nil {
			problems = append(problems, Problem{Msg: err.Error()})
			continue
		}
		c.ld = loader.New(r, embedded, predeclared, opts...)
		src, err := c.ld.ResolvePlaybook(f)
		if err != nil {
			problems = append(problems, Problem{Msg: err.Error()})
			continue
		}
		res := c.check(src, nil)
		problems = append(problems, res.problems...)
		if strings.HasPrefix(src.Logical, "playbooks/") && res.globals != nil && !res.globals["main"] {
			problems = append(problems, Problem{Pos: src.Display + ":1:1", Msg: "playbook has no main(ctx, ...) function"})
		}
	}
	// A module loaded by several files is reported once.
	seen := map[string]bool{}
	var out []Problem
	for _, p := range problems {
		if !seen[p.String()] {
			seen[p.String()] = true
			out = append(out, p)
		}
	}
	return out
}

type checker struct {
	ld          *loader.Loader
	predeclared starlark.StringDict
	done        map[string]*checked
}

type checked struct {
	globals  map[string]bool // nil when the file could not be resolved
	problems []Problem
}

func (c *checker) check(src *loader.Source, stack []string) *checked {
	if r, ok := c.done[src.Key]; ok {
		return r
	}
	res := &checked{}
	c.done[src.Key] = res
	if err := loader.CheckUTF8(src); err != nil {
		res.problems = append(res.problems, Problem{Msg: err.Error()})
		return res
	}
	f, err := loader.FileOptions.Parse(src.Display, src.Data, 0)
	if err != nil {
		if se, ok := err.(syntax.Error); ok {
			res.problems = append(res.problems, Problem{Pos: se.Pos.String(), Msg: se.Msg})
		} else {
			res.problems = append(res.problems, Problem{Msg: err.Error()})
		}
		return res
	}
	stack = append(stack, src.Display)
	for _, stmt := range f.Stmts {
		load, ok := stmt.(*syntax.LoadStmt)
		if !ok {
			continue
		}
		module := load.ModuleName()
		pos := load.Module.TokenPos.String()
		dep, err := c.ld.Resolve(src, module)
		if err != nil {
			res.problems = append(res.problems, Problem{Pos: pos, Msg: fmt.Sprintf("cannot load %s: %v", module, err)})
			continue
		}
		if i := indexOf(stack, dep.Display); i >= 0 {
			cycle := append(append([]string{}, stack[i:]...), dep.Display)
			res.problems = append(res.problems, Problem{Pos: pos, Msg: "load cycle: " + strings.Join(cycle, " → ")})
			continue
		}
		sub := c.check(dep, stack)
		res.problems = append(res.problems, sub.problems...)
		if sub.globals == nil {
			continue
		}
		for _, from := range load.From {
			name := from.Name
			switch {
			case strings.HasPrefix(name, "_"):
				res.problems = append(res.problems, Problem{Pos: from.NamePos.String(), Msg: fmt.Sprintf("load of private name %s from %s", name, module)})
			case !sub.globals[name]:
				res.problems = append(res.problems, Problem{Pos: from.NamePos.String(), Msg: fmt.Sprintf("%s does not define %s", module, name)})
			}
		}
	}
	isPredeclared := c.predeclared.Has
	if extra := extraGlobals(src.Display); len(extra) > 0 {
		isPredeclared = func(name string) bool { return slices.Contains(extra, name) || c.predeclared.Has(name) }
	}
	if err := resolve.File(f, isPredeclared, starlark.Universe.Has); err != nil {
		if list, ok := err.(resolve.ErrorList); ok {
			for _, e := range list {
				res.problems = append(res.problems, Problem{Pos: e.Pos.String(), Msg: e.Msg})
			}
		} else {
			res.problems = append(res.problems, Problem{Msg: err.Error()})
		}
		return res
	}
	res.globals = map[string]bool{}
	if m, ok := f.Module.(*resolve.Module); ok {
		for _, b := range m.Globals {
			res.globals[b.First.Name] = true
		}
	}
	return res
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
