package engine_test

import (
	"testing"

	"github.com/mno-sh/mno/engine/enginetest"
)

// TestScripts runs testdata/builtins/*.star, one file per builtin module
// that needs no real servers (see enginetest for the chunk conventions).
func TestScripts(t *testing.T) {
	enginetest.RunFiles(t, "../testdata/builtins/*.star", enginetest.Options{})
}
