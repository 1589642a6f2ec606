package mno_test

import (
	"bytes"
	"testing"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/loader"
)

// TestPrecompiledUpToDate: the compiled playbooks and roles the binary
// carries are those of the files it embeds; after editing a .star file, run
// `go generate` (until then the loader compiles that file from source).
func TestPrecompiledUpToDate(t *testing.T) {
	want, err := loader.Precompile(mno.Files, engine.Predeclared(), "playbooks", "roles")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mno.Files.Precompiled(), want) {
		t.Errorf("precompiled.bin is stale (%d bytes, want %d): run `go generate` in the repository's root", len(mno.Files.Precompiled()), len(want))
	}
}
