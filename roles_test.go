package mno_test

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/syntax"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine/loader"
)

// exportProblems checks the export rule of a role file (ARCHITECTURE.md,
// "Roles"): a role whose last statement is `NAME = struct(...)` exports
// through that struct exactly its public top-level names — every def and
// constant whose name does not start with "_" — each as `x = x`, and nothing
// else; what only the file uses is named with a leading underscore. Names a
// load binds are the other file's, not this one's. A role without an export
// struct is loaded by name (load("//roles/hosts.star", "render")), which the
// loader already limits to public names. It returns one line per problem,
// naming file:line.
func exportProblems(name string, src []byte) ([]string, error) {
	f, err := loader.FileOptions.Parse(name, src, 0)
	if err != nil {
		return nil, err
	}
	if len(f.Stmts) == 0 {
		return nil, nil
	}
	export, fields := exportStruct(f.Stmts[len(f.Stmts)-1])
	if export == "" {
		return nil, nil
	}
	// The file's own public names, where each is first defined.
	defined := map[string]syntax.Position{}
	var bind func(e syntax.Expr)
	bind = func(e syntax.Expr) {
		switch e := e.(type) {
		case *syntax.Ident:
			if _, ok := defined[e.Name]; !ok && !strings.HasPrefix(e.Name, "_") && e.Name != export {
				defined[e.Name] = e.NamePos
			}
		case *syntax.TupleExpr:
			for _, x := range e.List {
				bind(x)
			}
		case *syntax.ListExpr:
			for _, x := range e.List {
				bind(x)
			}
		case *syntax.ParenExpr:
			bind(e.X)
		}
	}
	var walk func(stmts []syntax.Stmt)
	walk = func(stmts []syntax.Stmt) {
		for _, s := range stmts {
			switch s := s.(type) {
			case *syntax.DefStmt:
				bind(s.Name)
			case *syntax.AssignStmt:
				bind(s.LHS)
			case *syntax.IfStmt:
				walk(s.True)
				walk(s.False)
			case *syntax.ForStmt:
				bind(s.Vars)
				walk(s.Body)
			case *syntax.WhileStmt:
				walk(s.Body)
			}
		}
	}
	walk(f.Stmts[:len(f.Stmts)-1])

	var problems []string
	exported := map[string]bool{}
	for _, kw := range fields {
		key := kw.X.(*syntax.Ident)
		at := key.NamePos
		exported[key.Name] = true
		if _, ok := defined[key.Name]; !ok {
			problems = append(problems, fmt.Sprintf("%s:%d: %s exports %s, which is not a public top-level name of the file", name, at.Line, export, key.Name))
		} else if v, ok := kw.Y.(*syntax.Ident); !ok || v.Name != key.Name {
			problems = append(problems, fmt.Sprintf("%s:%d: %s.%s is not exported as itself (want %s = %s)", name, at.Line, export, key.Name, key.Name, key.Name))
		}
	}
	var missing []string
	for n := range defined {
		if !exported[n] {
			missing = append(missing, n)
		}
	}
	slices.SortFunc(missing, func(a, b string) int { return int(defined[a].Line - defined[b].Line) })
	for _, n := range missing {
		problems = append(problems, fmt.Sprintf("%s:%d: %s is public but not in the export struct %s: export it or name it _%s", name, defined[n].Line, n, export, n))
	}
	return problems, nil
}

// exportStruct returns the name and keyword arguments of s when it is
// `NAME = struct(k = v, ...)`, else "".
func exportStruct(s syntax.Stmt) (string, []*syntax.BinaryExpr) {
	a, ok := s.(*syntax.AssignStmt)
	if !ok || a.Op != syntax.EQ {
		return "", nil
	}
	lhs, ok := a.LHS.(*syntax.Ident)
	if !ok {
		return "", nil
	}
	call, ok := a.RHS.(*syntax.CallExpr)
	if !ok {
		return "", nil
	}
	if fn, ok := call.Fn.(*syntax.Ident); !ok || fn.Name != "struct" {
		return "", nil
	}
	var fields []*syntax.BinaryExpr
	for _, arg := range call.Args {
		if kw, ok := arg.(*syntax.BinaryExpr); ok && kw.Op == syntax.EQ {
			fields = append(fields, kw)
		}
	}
	return lhs.Name, fields
}

// TestRoleExports: every stock role's export struct names exactly its public
// top-level defs and constants (exportProblems), so the struct cannot drift
// from the functions: a public helper left out, an export of something gone
// or private, or a field bound to another name fails here with file:line.
func TestRoleExports(t *testing.T) {
	files, err := fs.Glob(mno.Files, "roles/*.star")
	if err != nil {
		t.Fatal(err)
	}
	structs := 0
	for _, p := range files {
		if strings.HasSuffix(p, "_test.star") {
			continue
		}
		src, err := fs.ReadFile(mno.Files, p)
		if err != nil {
			t.Fatal(err)
		}
		problems, err := exportProblems(p, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems {
			t.Error(pr)
		}
		f, _ := loader.FileOptions.Parse(p, src, 0)
		if name, _ := exportStruct(f.Stmts[len(f.Stmts)-1]); name != "" {
			structs++
		}
	}
	if structs < 10 {
		t.Errorf("only %d roles end in an export struct: the check found too few to be checking anything", structs)
	}
}

// TestRoleExportsDrift: the check fails on a drifted role
// (testdata/exports/drifted.star) with each problem at its line.
func TestRoleExportsDrift(t *testing.T) {
	p := path.Join("testdata", "exports", "drifted.star")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := exportProblems(p, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		p + ":29: drifted.renamed is not exported as itself (want renamed = renamed)",
		p + ":30: drifted exports gone, which is not a public top-level name of the file",
		p + ":31: drifted exports _private, which is not a public top-level name of the file",
		p + ":11: LIMIT is public but not in the export struct drifted: export it or name it _LIMIT",
		p + ":17: helper is public but not in the export struct drifted: export it or name it _helper",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
