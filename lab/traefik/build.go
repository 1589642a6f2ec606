package traefik

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mno-sh/mno/lab/internal/toolcache"
)

// Build compiles Traefik into cacheDir unless it is already there, writing progress lines to
// progress; a cold build took 23 minutes on a shared two-core machine. The module is copied out
// of the read-only module cache and built unmodified. Concurrent builders serialise on a lock
// file and the binary appears atomically. queue makes it download and plan at once but
// compile only once no other build of the cache runs (see toolcache.Queue): the lab builds
// Traefik in the background while the kube-apiserver it needs first compiles.
func Build(ctx context.Context, cacheDir string, progress io.Writer, queue bool) (string, error) {
	out := BinaryIn(cacheDir)
	src := filepath.Join(cacheDir, "src", "traefik-"+Version)
	var opts []toolcache.Option
	if queue {
		opts = append(opts, toolcache.Queue(src+".lock"))
	}
	return out, toolcache.Fill(ctx, src+".lock", progress, func() bool { return toolcache.Executable(out) == nil },
		func(progress io.Writer) error { return build(ctx, src, out, progress, opts) })
}

// Name is the name of the binary and of its build's status (toolcache.ReadStatus).
func Name() string { return "traefik-" + Version }

// build copies Traefik's module to src, next to which the lock is, and builds out from it.
func build(ctx context.Context, src, out string, progress io.Writer, opts []toolcache.Option) error {
	mod := "github.com/traefik/traefik/v3@" + Version
	var info struct{ Dir, Error string }
	data, err := toolcache.GoOutput(ctx, filepath.Dir(src), "mod", "download", "-json", mod)
	if jerr := json.Unmarshal(data, &info); jerr != nil || info.Error != "" || err != nil {
		return fmt.Errorf("traefik: go mod download %s: %v %s", mod, err, info.Error)
	}
	fmt.Fprintf(progress, "traefik: copying %s to %s\n", info.Dir, src)
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	if err := copyTree(info.Dir, src); err != nil {
		return err
	}
	return toolcache.GoBuild(ctx, src, out, progress, []string{"./cmd/traefik"}, opts...)
}

// copyTree copies the module directory, making it writable (the module cache is read-only and
// go build writes go.sum updates).
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, dst)
		default:
			return nil // module zips hold only regular files
		}
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
