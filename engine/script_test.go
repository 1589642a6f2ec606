package engine_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/diag"
)

// TestScripts runs testdata/builtins/*.star. Each file is split into chunks
// at lines that are exactly "---". A chunk succeeds unless one of its lines
// carries `### "regexp"`: then it must fail, at that line, with an error
// matching the regexp. A chunk line `# mno: dry_run` runs it in dry-run mode.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/builtins/*.star")
	if err != nil || len(files) == 0 {
		t.Fatalf("no script tests found: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, chunk := range splitChunks(string(data)) {
			name := strings.TrimSuffix(filepath.Base(file), ".star") + "/" + chunk.name(i)
			t.Run(name, func(t *testing.T) { runChunk(t, file, chunk) })
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

func (c chunk) name(int) string { return "L" + strconv.Itoa(c.firstLine) }

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

func runChunk(t *testing.T, file string, c chunk) {
	var stdout, stderr bytes.Buffer
	s, _, err := engine.NewSession(context.Background(), engine.Options{
		Playbook: file, DryRun: c.dryRun, Embedded: mno.Files, Stdout: &stdout, Stderr: &stderr,
		Root: filepath.Dir(file),
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
		t.Fatalf("line %d: succeeded, want error matching %q", c.wantLine, c.wantErr)
	case c.wantErr != nil:
		msg := diag.Render(err, nil)
		if !c.wantErr.MatchString(msg) {
			t.Fatalf("line %d: error\n%s\ndoes not match %q", c.wantLine, msg, c.wantErr)
		}
		if pos, ok := diag.Position(err); !ok || int(pos.Line) != c.wantLine {
			t.Fatalf("error at %v, want line %d:\n%s", pos, c.wantLine, msg)
		}
	}
}
