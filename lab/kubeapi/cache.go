package kubeapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Versions of the binaries [Build] produces. EtcdVersion must equal the go.etcd.io/etcd/server/v3
// version that KubernetesVersion's go.mod pins; [Build] checks it so a bump cannot drift.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
)

// ErrNotBuilt reports that a binary is missing from the cache; tests turn it into a skip or,
// on CI, into a failure that says to run `make tools`.
var ErrNotBuilt = errors.New("not built (run `make tools` or `go run ./lab/cmd/buildtools`)")

// CacheDir returns where built helper binaries live: $MNO_CACHE, else the user's cache
// directory plus "mno" (~/.cache/mno on Linux). Binaries are kept outside the repository
// because a cold build takes many minutes.
func CacheDir() (string, error) {
	if d := os.Getenv("MNO_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kubeapi: no cache directory (set MNO_CACHE): %w", err)
	}
	return filepath.Join(d, "mno"), nil
}

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
		if err := executable(p); err != nil {
			return err
		}
	}
	return nil
}

func executable(path string) error {
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
