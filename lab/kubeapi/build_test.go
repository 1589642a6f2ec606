package kubeapi

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBuildSkipsCachedBinaries(t *testing.T) {
	cache := t.TempDir()
	want := BinariesIn(cache)
	for _, p := range []string{want.APIServer, want.Etcd} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", "") // any attempt to run go would fail
	var progress bytes.Buffer
	got, err := Build(context.Background(), cache, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || progress.Len() > 0 {
		t.Errorf("Build = %+v with progress %q, want %+v silently", got, progress.String(), want)
	}
}

func TestFindBinariesReportsMissing(t *testing.T) {
	t.Setenv("MNO_CACHE", t.TempDir())
	if _, err := FindBinaries(); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("FindBinaries in an empty cache: %v, want ErrNotBuilt", err)
	}
}
