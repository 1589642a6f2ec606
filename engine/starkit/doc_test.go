package starkit

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocMatchesGoParser: the line scan that PackageDoc does reads
// every builtin module's doc.go (and hostile variants) as go/parser's
// package doc comment, so `mno doc` says what the Go documentation says.
func TestPackageDocMatchesGoParser(t *testing.T) {
	files, err := filepath.Glob("../../builtins/*/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../scenario/doc.go")
	if len(files) < 9 {
		t.Fatalf("found only %d doc.go files: %v", len(files), files)
	}
	cases := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[f] = string(data)
	}
	cases["build constraint first"] = "//go:build linux\n\n// Package x does y.\n//\n//\tx.f(a) -> b\npackage x\n"
	cases["blank line before package"] = "// Not the doc.\n\npackage x\n"
	cases["two groups"] = "// Copyright notice.\n\n// Package x is documented.\n// Second line.\npackage x // trailing\n"
	cases["indented and unicode"] = "  // Package x — ünïcode\n  //\tindented → kept\npackage x\n"
	cases["no doc"] = "package x\n"
	cases["tabs after package"] = "// Package x.\npackage\tx\n"
	for name, src := range cases {
		want := parsedDoc(t, src)
		if got := PackageDoc([]byte(src)); got != want {
			t.Errorf("%s:\nPackageDoc:\n%s\ngo/parser:\n%s", name, got, want)
		}
		if strings.HasPrefix(name, "../") && want == "" {
			t.Errorf("%s has no package doc comment", name)
		}
	}
}

// parsedDoc is what PackageDoc once computed with go/parser.
func parsedDoc(t *testing.T, src string) string {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", src, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		return ""
	}
	var lines []string
	for _, c := range f.Doc.List {
		lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(c.Text, "//"), " "))
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
