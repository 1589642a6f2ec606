// Package enginetest runs Starlark script tests for builtin packages.
//
// A script file is split into chunks at lines that are exactly "---". A chunk
// succeeds unless one of its lines carries `### "regexp"`: then it must fail,
// at that line, with an error matching the regexp. A chunk line
// `# mno: dry_run` runs that chunk in dry-run mode. Each chunk runs in a
// fresh session (its own journal, connections and module cache).
package enginetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/diag"
	"github.com/mno-sh/mno/engine/runctx"
)

// Options configure the sessions chunks run in.
type Options struct {
	// Config is the control plane configuration (identity, kubeconfig …).
	Config runctx.Config
	// Globals are predeclared for the script in addition to the builtins,
	// e.g. addresses and host keys of test hosts.
	Globals starlark.StringDict
}

// Result is what one chunk produced.
type Result struct {
	Stdout, Stderr string
}

// RunFiles runs every chunk of every file matching glob as a subtest.
func RunFiles(t *testing.T, glob string, o Options) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no script tests match %s: %v", glob, err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range splitChunks(string(data)) {
			name := strings.TrimSuffix(filepath.Base(file), ".star") + "/L" + strconv.Itoa(c.firstLine)
			t.Run(name, func(t *testing.T) { runChunk(t, file, c, o) })
		}
	}
}

type chunk struct {
	text      string // padded with newlines so line numbers match the file
	firstLine int
	wantLine  int
	wantErr   *regexp.Regexp
	dryRun    bool
}

var wantRE = regexp.MustCompile(`###\s*"(.*)"\s*$`)

func splitChunks(src string) []chunk {
	lines := strings.Split(src, "\n")
	var out []chunk
	start := 0
	flush := func(end int) {
		c := chunk{firstLine: start + 1}
		var b strings.Builder
		b.WriteString(strings.Repeat("\n", start))
		for i := start; i < end; i++ {
			line := lines[i]
			if m := wantRE.FindStringSubmatch(line); m != nil {
				c.wantLine = i + 1
				c.wantErr = regexp.MustCompile(m[1])
			}
			if strings.TrimSpace(line) == "# mno: dry_run" {
				c.dryRun = true
			}
			b.WriteString(line)
			b.WriteString("\n")
		}
		c.text = b.String()
		if strings.TrimSpace(c.text) != "" {
			out = append(out, c)
		}
	}
	for i, line := range lines {
		if line == "---" {
			flush(i)
			start = i + 1
		}
	}
	flush(len(lines))
	return out
}

func runChunk(t *testing.T, file string, c chunk, o Options) {
	var stdout, stderr bytes.Buffer
	s, _, err := engine.NewSession(context.Background(), engine.Options{
		Playbook: file, DryRun: c.dryRun, Embedded: mno.Files, Stdout: &stdout, Stderr: &stderr,
		Root: filepath.Dir(file), Config: o.Config, Globals: o.Globals,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := s.Loader.Virtual(file, []byte(c.text))
	_, err = s.Exec(src)
	switch {
	case c.wantErr == nil && err != nil:
		t.Fatalf("unexpected error:\n%s\nstderr:\n%s", diag.Render(err, nil), stderr.String())
	case c.wantErr != nil && err == nil:
		t.Fatalf("line %d: succeeded, want error matching %q\nstderr:\n%s", c.wantLine, c.wantErr, stderr.String())
	case c.wantErr != nil:
		msg := diag.Render(err, nil)
		if !c.wantErr.MatchString(msg) {
			t.Fatalf("line %d: error\n%s\ndoes not match %q", c.wantLine, msg, c.wantErr)
		}
		if line := lineIn(err, file); line != c.wantLine {
			t.Fatalf("error at line %d of %s, want line %d:\n%s", line, file, c.wantLine, msg)
		}
	}
}

// lineIn returns the line of the innermost frame of err that is in file (a
// chunk may fail inside a role it loads; the expectation is written at the
// call in the test file).
func lineIn(err error, file string) int {
	abs, _ := filepath.Abs(file)
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		for i := len(ee.CallStack) - 1; i >= 0; i-- {
			fn := ee.CallStack[i].Pos.Filename()
			if a, _ := filepath.Abs(fn); a == abs {
				return int(ee.CallStack[i].Pos.Line)
			}
		}
	}
	if pos, ok := diag.Position(err); ok {
		return int(pos.Line)
	}
	return 0
}

// Run executes src as a whole file (not split) in a session with o, and
// returns its output; the error is the script's.
func Run(t *testing.T, path, src string, dry bool, o Options) (Result, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	s, _, err := engine.NewSession(context.Background(), engine.Options{
		Playbook: path, DryRun: dry, Embedded: mno.Files, Stdout: &stdout, Stderr: &stderr,
		Root: filepath.Dir(path), Config: o.Config, Globals: o.Globals,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Exec(s.Loader.Virtual(path, []byte(src)))
	return Result{Stdout: stdout.String(), Stderr: stderr.String()}, err
}
