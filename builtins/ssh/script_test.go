package ssh_test

import (
	"testing"

	"github.com/mno-sh/mno/engine/enginetest"
)

// TestScripts runs testdata/ssh/*.star against two real sshd hosts (see
// enginetest for the chunk conventions; fixtures/lib.star for conn()).
func TestScripts(t *testing.T) {
	e := newEnv(t, 2)
	enginetest.RunFiles(t, "../../testdata/ssh/*.star", enginetest.Options{Config: e.cfg, Globals: e.globals()})
}
