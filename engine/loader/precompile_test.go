package loader_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/loader"
)

// files is a PrecompiledFS whose archive may be another file set's.
type files struct {
	fstest.MapFS
	archive []byte
}

func (f files) Precompiled() []byte { return f.archive }

// TestPrecompiled: an embedded file runs from its compiled form only when
// that was compiled from exactly its bytes against names this run
// predeclares; it behaves as the source does (values, error positions); an
// edited file, a file on disk and a run missing a predeclared name compile
// from source.
func TestPrecompiled(t *testing.T) {
	predeclared := starlark.StringDict{"greet": starlark.String("hello")}
	lib := "def f(x):\n    return greet + \", \" + x\n\ndef boom():\n    fail(\"boom\")\n"
	main := "load(\"//roles/lib.star\", \"f\", \"boom\")\nvalue = f(\"world\")\n"
	orig := fstest.MapFS{"roles/lib.star": {Data: []byte(lib)}, "playbooks/main.star": {Data: []byte(main)}}
	archive, err := loader.Precompile(orig, predeclared, "playbooks", "roles")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(archive), "roles/lib.star\t") || !strings.Contains(string(archive), "playbooks/main.star\t") {
		t.Fatalf("archive lacks the files:\n%q", archive)
	}

	run := func(t *testing.T, fsys fs.FS, pre starlark.StringDict) (string, error) {
		t.Helper()
		l := loader.New("", fsys, pre)
		src, err := l.ResolvePlaybook("main")
		if err != nil {
			t.Fatal(err)
		}
		th := &starlark.Thread{Name: "main", Load: l.Load}
		loader.InitThread(th)
		g, err := l.Exec(th, src)
		if err != nil {
			return "", err
		}
		_, err = starlark.Call(th, mustLoad(t, l, th, "//roles/lib.star", "boom"), nil, nil)
		return g["value"].String(), err
	}

	t.Run("the compiled form is what runs", func(t *testing.T) {
		// An archive whose lib.star entry is another program filed under
		// these bytes' digest: running it proves the loader took the
		// compiled form, not the source.
		other := fstest.MapFS{"roles/lib.star": {Data: []byte(strings.Replace(lib, `", "`, `" from bytecode, "`, 1))}, "playbooks/main.star": orig["playbooks/main.star"]}
		forged, err := loader.Precompile(other, predeclared, "playbooks", "roles")
		if err != nil {
			t.Fatal(err)
		}
		forged = []byte(strings.Replace(string(forged), digest(other["roles/lib.star"].Data), digest([]byte(lib)), 1))
		if got, _ := run(t, files{orig, forged}, predeclared); got != `"hello from bytecode, world"` {
			t.Errorf("value = %s: the loader did not run the compiled form", got)
		}
	})
	t.Run("compiled", func(t *testing.T) {
		got, err := run(t, files{orig, archive}, predeclared)
		if got != `"hello, world"` {
			t.Errorf("value = %s", got)
		}
		var ee *starlark.EvalError
		if !errors.As(err, &ee) || !strings.Contains(ee.Backtrace(), "embedded:roles/lib.star:5:9: in boom") {
			t.Errorf("error from the compiled file: %v", err)
		}
	})
	t.Run("edited file", func(t *testing.T) {
		edited := fstest.MapFS{"roles/lib.star": {Data: []byte(strings.Replace(lib, `", "`, `" and "`, 1))}, "playbooks/main.star": orig["playbooks/main.star"]}
		if got, _ := run(t, files{edited, archive}, predeclared); got != `"hello and world"` {
			t.Errorf("an edited embedded file ran its stale compiled form: value = %s", got)
		}
	})
	t.Run("predeclared name missing", func(t *testing.T) {
		_, err := run(t, files{orig, archive}, starlark.StringDict{})
		if err == nil || !strings.Contains(err.Error(), "undefined: greet") {
			t.Errorf("without greet: %v, want the source compiler's undefined error", err)
		}
	})
	t.Run("more predeclared names", func(t *testing.T) {
		more := starlark.StringDict{"greet": starlark.String("hi"), "extra": starlark.None}
		if got, _ := run(t, files{orig, archive}, more); got != `"hi, world"` {
			t.Errorf("value = %s", got)
		}
	})
	t.Run("not an archive", func(t *testing.T) {
		if got, _ := run(t, files{orig, []byte("junk")}, predeclared); got != `"hello, world"` {
			t.Errorf("value = %s", got)
		}
	})
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mustLoad(t *testing.T, l *loader.Loader, th *starlark.Thread, module, name string) starlark.Value {
	t.Helper()
	g, err := l.Load(th, module)
	if err != nil {
		t.Fatal(err)
	}
	return g[name]
}
