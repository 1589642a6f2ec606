package toolcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDirFollowsMNOCache(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("MNO_CACHE", "rel/cache")
	got, err := Dir()
	if want, _ := filepath.Abs("rel/cache"); err != nil || got != want {
		t.Errorf("Dir with MNO_CACHE=rel/cache = %q, %v; want %q", got, err, want)
	}
	t.Setenv("MNO_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg/cache")
	if got, err := Dir(); err != nil || got != "/xdg/cache/mno" {
		t.Errorf("Dir without MNO_CACHE = %q, %v; want /xdg/cache/mno", got, err)
	}
}

func TestExecutable(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path string
		notBuilt   bool
		ok         bool
	}{
		{name: "missing", path: filepath.Join(dir, "missing"), notBuilt: true},
		{name: "directory", path: dir},
		{name: "not executable", path: write("plain", 0o644)},
		{name: "executable", path: write("tool", 0o755), ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Executable(tc.path)
			if (err == nil) != tc.ok || errors.Is(err, ErrNotBuilt) != tc.notBuilt {
				t.Errorf("Executable(%s) = %v; want ok=%v, ErrNotBuilt=%v", tc.path, err, tc.ok, tc.notBuilt)
			}
		})
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"build", "-ldflags", "-X a=b -X c='d'", "", "./cmd/x"})
	want := `build -ldflags '-X a=b -X c='\''d'\''' '' ./cmd/x`
	if got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
	out, err := exec.Command("sh", "-c", "printf '%s|' "+got).Output()
	if err != nil || string(out) != "build|-ldflags|-X a=b -X c='d'||./cmd/x|" {
		t.Errorf("the shell splits it into %q (%v)", out, err)
	}
}

// TestGoBuild builds a small program the way the caches are filled: the binary appears under
// its name only once it is complete, and the progress says what ran.
func TestGoBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	src := t.TempDir()
	for name, data := range map[string]string{
		"go.mod":  "module mno.local/hello\n\ngo 1.26\n",
		"main.go": "package main\n\nfunc main() { println(\"hello from the cache\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "bin", "hello-v1")
	var buf bytes.Buffer
	progress := Progress(&buf)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := GoBuild(ctx, src, out, progress, []string{"."}); err != nil {
		t.Fatalf("GoBuild: %v\n%s", err, buf.String())
	}
	if err := Executable(out); err != nil {
		t.Fatal(err)
	}
	if got, err := exec.Command(out).CombinedOutput(); err != nil || string(got) != "hello from the cache\n" {
		t.Errorf("built binary says %q, %v", got, err)
	}
	for _, want := range []string{"building hello-v1", "+ (cd " + src + " && go build -v -trimpath -o ", "built " + out + " in "} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, buf.String())
		}
	}
	if left, _ := filepath.Glob(out + ".tmp-*"); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	cancelled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if err := GoBuild(cancelled, src, out+"-again", Progress(nil), []string{"."}); !errors.Is(err, context.Canceled) {
		t.Errorf("GoBuild with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(out + "-again"); err == nil {
		t.Errorf("a cancelled build left %s", out+"-again")
	}
}

// TestFillBuildsOnce runs builders side by side, as two test binaries or two `make tools` do:
// one builds, the others wait for the lock and then find the binary there.
func TestFillBuildsOnce(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "tool-v1")
	present := func() bool { return Executable(bin) == nil }
	var builds atomic.Int32
	build := func(progress io.Writer) error {
		builds.Add(1)
		fmt.Fprintln(progress, "building tool-v1")
		time.Sleep(200 * time.Millisecond) // long enough for the others to queue on the lock
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			return err
		}
		return os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = Fill(t.Context(), filepath.Join(dir, "src", "tool-v1.lock"), nil, present, build) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := builds.Load(); n != 1 || !present() {
		t.Errorf("%d builds, binary present: %v; want 1 build and the binary", n, present())
	}

	var progress bytes.Buffer
	if err := Fill(t.Context(), filepath.Join(dir, "src", "tool-v1.lock"), &progress, present, build); err != nil || builds.Load() != 1 || progress.Len() > 0 {
		t.Errorf("Fill with the binary present: %v, %d builds, progress %q; want nothing done", err, builds.Load(), progress.String())
	}
}

// TestPackageCounter: the names `go build -v` prints count as compiled packages and are not
// passed on; every other line (downloads, compiler errors), split across writes or not, is.
func TestPackageCounter(t *testing.T) {
	var out bytes.Buffer
	c := &packageCounter{out: &out}
	for _, chunk := range []string{
		"go: downloading k8s.io/api v0.37.2\nk8s.io/api/core",
		"/v1\ngithub.com/pkg/sftp\n# example.com/broken\n",
		"broken/x.go:3:2: undefined: y\nlast-without-newline",
	} {
		if n, err := c.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	c.flush()
	if c.count() != 2 {
		t.Errorf("counted %d packages, want 2 (k8s.io/api/core/v1, github.com/pkg/sftp); passed on %q", c.count(), out.String())
	}
	want := "go: downloading k8s.io/api v0.37.2\n# example.com/broken\nbroken/x.go:3:2: undefined: y\nlast-without-newline\n"
	if out.String() != want {
		t.Errorf("passed on %q, want %q", out.String(), want)
	}
}
