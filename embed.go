// Package mno embeds the stock playbooks and roles, so an installed binary
// runs `mno run add-vps …` from any directory.
package mno

import "embed"

//go:generate go run ./engine/loader/precompile -o precompiled.bin

// Files holds playbooks/ and roles/ (and their templates), and their
// Starlark compiled ahead of time (Precompiled).
var Files = FS{files, precompiled}

var (
	//go:embed playbooks roles
	files embed.FS
	// precompiled is `go generate`'s archive of files' Starlark; the loader
	// runs a file's compiled form only when it matches the file's bytes.
	// TestPrecompiledUpToDate fails when it is stale.
	//
	//go:embed precompiled.bin
	precompiled []byte
)

// FS is an embedded file system with its Starlark compiled ahead of time
// (engine/loader's PrecompiledFS).
type FS struct {
	embed.FS
	precompiled []byte
}

// Precompiled returns the archive loader.Precompile made of the files.
func (f FS) Precompiled() []byte { return f.precompiled }
