package engine_test

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine"
)

// TestDocsMatchModules: every predeclared name and module member is in its
// package's documentation, and every documented call exists, so `mno doc`
// cannot drift from the code.
func TestDocsMatchModules(t *testing.T) {
	for _, m := range engine.Modules() {
		if m.Doc == "" {
			t.Errorf("module %s has no documentation", m.Name)
			continue
		}
		for name, v := range m.Globals {
			if mod, ok := v.(*starlarkstruct.Module); ok {
				for member := range mod.Members {
					if !documented(m.Doc, name+"."+member) {
						t.Errorf("%s: %s.%s is not documented", m.Name, name, member)
					}
				}
				continue
			}
			if !documented(m.Doc, name) {
				t.Errorf("%s: %s is not documented", m.Name, name)
			}
		}
		for _, call := range documentedCalls(m.Doc) {
			if !exists(m.Globals, call) && !starlark.Universe.Has(call) {
				t.Errorf("%s documents %s(…), which does not exist", m.Name, call)
			}
		}
	}
}

func documented(doc, name string) bool {
	return strings.Contains(doc, name+"(") || strings.Contains(doc, name+" ")
}

// documentedCalls returns the names of the signatures in a doc: lines that
// start (after indentation) with name(.
func documentedCalls(doc string) []string {
	var calls []string
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "\t") {
			continue
		}
		f := strings.TrimSpace(line)
		if i := strings.IndexByte(f, '('); i > 0 && !strings.ContainsAny(f[:i], " \t") {
			calls = append(calls, f[:i])
		}
	}
	return calls
}

func exists(g starlark.StringDict, call string) bool {
	head, rest, dotted := strings.Cut(call, ".")
	v, ok := g[head]
	if !ok || !dotted {
		return ok
	}
	mod, ok := v.(*starlarkstruct.Module)
	if !ok {
		return false
	}
	return exists(mod.Members, rest) // kube.configmap.get: nested modules
}
