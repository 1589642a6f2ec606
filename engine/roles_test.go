package engine_test

import (
	"testing"

	"github.com/mno-sh/mno/engine/enginetest"
)

// TestRoleScripts runs testdata/roles/*.star: the pure-data parts of the
// stock roles (routes, hosts block) tested without any server.
func TestRoleScripts(t *testing.T) {
	enginetest.RunFiles(t, "../testdata/roles/*.star", enginetest.Options{})
}
