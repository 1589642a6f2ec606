package kubeapi

import (
	"path/filepath"

	"github.com/mno-sh/mno/lab/internal/toolcache"
)

// Versions of the binaries [Build] produces. EtcdVersion must equal the go.etcd.io/etcd/server/v3
// version that KubernetesVersion's go.mod pins; [Build] checks it so a bump cannot drift.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
)

// ErrNotBuilt reports that a binary is missing from the cache; tests turn it into a skip or,
// on CI, into a failure that says to run `make tools`. It is traefik.ErrNotBuilt too.
var ErrNotBuilt = toolcache.ErrNotBuilt

// CacheDir returns where built helper binaries live: $MNO_CACHE, else the user's cache
// directory plus "mno" (~/.cache/mno on Linux). Binaries are kept outside the repository
// because a cold build takes many minutes.
func CacheDir() (string, error) { return toolcache.Dir() }

// Binaries are the paths of the two programs a [Server] runs.
type Binaries struct {
	APIServer string
	Etcd      string
}

// BinariesIn returns the versioned binary paths under cacheDir, whether or not they exist.
func BinariesIn(cacheDir string) Binaries {
	bin := filepath.Join(cacheDir, "bin")
	return Binaries{
		APIServer: filepath.Join(bin, "kube-apiserver-"+KubernetesVersion),
		Etcd:      filepath.Join(bin, "etcd-"+EtcdVersion),
	}
}

// FindBinaries returns the cached binaries, or an error wrapping [ErrNotBuilt] naming the
// first one missing.
func FindBinaries() (Binaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	b := BinariesIn(dir)
	return b, b.check()
}

func (b Binaries) check() error {
	for _, p := range []string{b.Etcd, b.APIServer} {
		if err := toolcache.Executable(p); err != nil {
			return err
		}
	}
	return nil
}
