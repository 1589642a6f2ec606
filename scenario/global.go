package scenario

import (
	"strings"

	"github.com/mno-sh/mno/engine"
)

// Global is what scenario files see predeclared besides the builtins: the lab
// that `mno test` runs them against.
const Global = "lab"

// IsScenario reports whether the file named name is a scenario of `mno test`
// (a *_test.star file).
func IsScenario(name string) bool { return strings.HasSuffix(name, "_test.star") }

// mno check resolves scenario files with the lab global predeclared.
func init() { engine.RegisterFileGlobals(IsScenario, Global) }
