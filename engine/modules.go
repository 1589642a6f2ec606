package engine

import (
	"sort"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/builtins/assert"
	"github.com/mno-sh/mno/builtins/bootstrap"
	"github.com/mno-sh/mno/builtins/encoding"
	"github.com/mno-sh/mno/builtins/flow"
	"github.com/mno-sh/mno/builtins/kube"
	"github.com/mno-sh/mno/builtins/local"
	"github.com/mno-sh/mno/builtins/ssh"
	"github.com/mno-sh/mno/builtins/state"
	"github.com/mno-sh/mno/builtins/template"
	"github.com/mno-sh/mno/builtins/time"
	"github.com/mno-sh/mno/engine/starkit"
)

// Modules is the one list of builtin modules in mno.
func Modules() []starkit.Module {
	return []starkit.Module{
		flow.Module(),
		encoding.Module(),
		time.Module(),
		template.Module(),
		local.Module(),
		ssh.Module(),
		kube.Module(),
		state.Module(),
		assert.Module(),
		bootstrap.Module(),
	}
}

// Predeclared returns every name the builtin modules predeclare.
func Predeclared() starlark.StringDict {
	d := starlark.StringDict{}
	for _, m := range Modules() {
		for k, v := range m.Globals {
			d[k] = v
		}
	}
	return d
}

// PredeclaredNames lists the predeclared names, sorted.
func PredeclaredNames() []string {
	names := Predeclared().Keys()
	sort.Strings(names)
	return names
}
