// Command precompile writes the archive of the embedded playbooks and roles
// compiled ahead of time (loader.Precompile), which the mno binary embeds:
// `go generate` in the repository's root runs it.
//
//	go run ./engine/loader/precompile -o precompiled.bin
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/loader"
)

func main() {
	out := flag.String("o", "precompiled.bin", "the archive to write")
	flag.Parse()
	data, err := loader.Precompile(mno.Files, engine.Predeclared(), "playbooks", "roles")
	if err == nil {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "precompile:", err)
		os.Exit(1)
	}
}
