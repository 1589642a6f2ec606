package time

import (
	_ "embed"

	startime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Module returns the time module.
func Module() starkit.Module {
	return starkit.Module{Name: "time", Doc: starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"time": startime.Module}}
}
