// Package toolcache keeps the helper binaries the lab runs (kube-apiserver, etcd, Traefik) in a
// cache outside the repository and builds them there from the Go module proxy. It holds what
// lab/kubeapi and lab/traefik share: where the cache is, the lock that serialises concurrent
// builders, the go command that builds and the progress lines a long build prints.
package toolcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrNotBuilt reports that a binary is missing from the cache; tests turn it into a skip or,
// on CI, into a failure that says to run `make tools`.
var ErrNotBuilt = errors.New("not built (run `make tools` or `go run ./lab/cmd/buildtools`)")

// Dir returns where built helper binaries live: $MNO_CACHE, else the user's cache directory
// plus "mno" (~/.cache/mno on Linux). Binaries are kept outside the repository because a cold
// build takes many minutes.
func Dir() (string, error) {
	if d := os.Getenv("MNO_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("toolcache: no cache directory (set MNO_CACHE): %w", err)
	}
	return filepath.Join(d, "mno"), nil
}

// Executable reports why path is not a runnable cached binary: an error wrapping
// [ErrNotBuilt] when it is missing, another when it is not an executable file, nil when it is.
func Executable(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, ErrNotBuilt)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: not an executable file", path)
	}
	return nil
}

// Fill runs build unless present reports that the cache already holds what it makes. It holds
// the lock at lockPath (making its directory) while it checks again and builds, so concurrent
// builders wait for one another and the later ones build nothing. build gets a progress writer
// its goroutines can share (see [Progress]).
func Fill(ctx context.Context, lockPath string, progress io.Writer, present func() bool, build func(progress io.Writer) error) error {
	if present() {
		return nil
	}
	progress = Progress(progress)
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return err
	}
	// The lock is <cache>/src/NAME.lock: while waiting, say how far the
	// builds in that cache are.
	cacheDir := filepath.Dir(filepath.Dir(lockPath))
	note := func() []string {
		var lines []string
		for _, s := range Running(cacheDir) {
			lines = append(lines, s.Line())
		}
		return lines
	}
	unlock, err := lockNoting(ctx, lockPath, progress, note, 30*time.Second)
	if err != nil {
		return err
	}
	defer unlock()
	if present() { // built by whoever held the lock before us
		return nil
	}
	return build(progress)
}
