package engine_test

import (
	"testing"

	"github.com/mno-sh/mno/engine/enginetest"
	"github.com/mno-sh/mno/engine/runctx"
)

// TestScripts runs testdata/builtins/*.star, one file per builtin module
// that needs no real servers (see enginetest for the chunk conventions).
func TestScripts(t *testing.T) {
	env := map[string]string{"MNO_TEST_ENV": "from-env", "MNO_TEST_EMPTY": ""}
	enginetest.RunFiles(t, "../testdata/builtins/*.star", enginetest.Options{
		Config: runctx.Config{Getenv: func(k string) string { return env[k] }},
	})
}
