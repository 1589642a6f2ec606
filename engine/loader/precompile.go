package loader

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"
)

// Precompiled embedded files. Parsing, resolving and compiling the stock
// playbook and roles is most of what loading them costs (about 5 ms of CPU
// for sync's); the binary carries them compiled ahead of time (go generate,
// see Precompile), and the loader executes an embedded file's compiled form
// when it is there for exactly these bytes and every predeclared name it was
// compiled against is predeclared in this run. Anything else — a file from
// a workspace, an edited or new embedded file, other predeclared names, a
// starlark-go whose bytecode version differs — is compiled from source, with
// the same result.

// PrecompiledFS is an embedded file system that also carries the archive
// Precompile made of its Starlark files (mno.Files is one).
type PrecompiledFS interface {
	fs.FS
	Precompiled() []byte
}

const archiveMagic = "mno-precompiled-starlark 1\n"

// Precompile compiles every .star file of files under dirs (scenarios, which
// have their own predeclared names, excepted) against the names of
// predeclared, as the loader would, and returns the archive the loader
// reads.
func Precompile(files fs.FS, predeclared starlark.StringDict, dirs ...string) ([]byte, error) {
	names := predeclared.Keys()
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString(archiveMagic)
	fmt.Fprintf(&b, "predeclared %s\n", strings.Join(names, ","))
	var paths []string
	for _, d := range dirs {
		err := fs.WalkDir(files, d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(p, ".star") && !strings.HasSuffix(p, "_test.star") {
				paths = append(paths, p)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		data, err := fs.ReadFile(files, p)
		if err != nil {
			return nil, err
		}
		_, prog, err := starlark.SourceProgramOptions(FileOptions, EmbeddedPrefix+p, data, predeclared.Has)
		if err != nil {
			return nil, fmt.Errorf("precompile %s: %w", p, err)
		}
		var code bytes.Buffer
		if err := prog.Write(&code); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s\t%s\t%d\n", p, hex.EncodeToString(sum[:]), code.Len())
		b.Write(code.Bytes())
	}
	return b.Bytes(), nil
}

// archive is a parsed Precompile archive.
type archive struct {
	names   []string // the predeclared names the files were compiled against
	entries map[string]archiveEntry
}

type archiveEntry struct {
	sum  string
	code []byte
}

func parseArchive(data []byte) (*archive, error) {
	rest, ok := bytes.CutPrefix(data, []byte(archiveMagic))
	if !ok {
		return nil, fmt.Errorf("not a precompiled archive")
	}
	line, rest, ok := bytes.Cut(rest, []byte("\n"))
	names, isNames := bytes.CutPrefix(line, []byte("predeclared "))
	if !ok || !isNames {
		return nil, fmt.Errorf("no predeclared names")
	}
	a := &archive{names: strings.Split(string(names), ","), entries: map[string]archiveEntry{}}
	for len(rest) > 0 {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		f := strings.Split(string(line), "\t")
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("bad entry %q", line)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 0 || n > len(after) {
			return nil, fmt.Errorf("bad length in %q", line)
		}
		a.entries[f[0]] = archiveEntry{sum: f[1], code: after[:n]}
		rest = after[n:]
	}
	return a, nil
}

// precompiled returns the compiled program of src if the archive holds it
// for these bytes and this run's predeclared names cover those it was
// compiled against; else nil.
func (l *Loader) precompiled(src *Source) *starlark.Program {
	if !src.Embedded || l.archive == nil {
		return nil
	}
	a := l.archive()
	if a == nil {
		return nil
	}
	e, ok := a.entries[src.Logical]
	if !ok {
		return nil
	}
	if sum := sha256.Sum256(src.Data); hex.EncodeToString(sum[:]) != e.sum {
		return nil
	}
	for _, n := range a.names {
		if !l.predeclared.Has(n) {
			return nil
		}
	}
	prog, err := starlark.CompiledProgram(bytes.NewReader(e.code))
	if err != nil {
		return nil // another bytecode version: compile from source
	}
	return prog
}

// archiveOf returns a function that parses embedded's archive once, or nil
// when it carries none.
func archiveOf(embedded fs.FS) func() *archive {
	p, ok := embedded.(PrecompiledFS)
	if !ok || len(p.Precompiled()) == 0 {
		return nil
	}
	return sync.OnceValue(func() *archive {
		a, err := parseArchive(p.Precompiled())
		if err != nil {
			return nil
		}
		return a
	})
}
