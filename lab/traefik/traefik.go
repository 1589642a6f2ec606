// Package traefik runs a real Traefik binary, built from the Go module proxy, for tests and for
// `mno lab`.
//
// [Build] compiles Traefik into a cache outside the repository ([CacheDir]); `go run
// ./lab/cmd/buildtools` (`make tools`) does that once, so [Start] never compiles. [Argv] and
// [Options.Command] let a caller run the binary elsewhere, for example inside network and mount
// namespaces, and [Process.WaitReady] polls an endpoint it serves.
//
// The binary is built without a version stamp (it reports "dev"), which also keeps it from
// checking for new releases over the network; static configurations should still set
// global.checkNewVersion and global.sendAnonymousUsage to false.
package traefik

import (
	"path/filepath"

	"github.com/mno-sh/mno/lab/internal/toolcache"
)

// Version is the Traefik release [Build] compiles. v3.7.x does not build from the module proxy.
const Version = "v3.6.12"

// ErrNotBuilt reports that the binary is missing from the cache; tests turn it into a skip or,
// on CI, into a failure that says to run `make tools`. It is kubeapi.ErrNotBuilt too.
var ErrNotBuilt = toolcache.ErrNotBuilt

// CacheDir returns where built helper binaries live: $MNO_CACHE, else the user's cache
// directory plus "mno" (~/.cache/mno on Linux). It agrees with kubeapi.CacheDir.
func CacheDir() (string, error) { return toolcache.Dir() }

// BinaryIn returns the path of the versioned binary under cacheDir, whether or not it exists.
func BinaryIn(cacheDir string) string {
	return filepath.Join(cacheDir, "bin", "traefik-"+Version)
}

// Binary returns the cached Traefik binary, or an error wrapping [ErrNotBuilt].
func Binary() (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	path := BinaryIn(dir)
	return path, toolcache.Executable(path)
}
