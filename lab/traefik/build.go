package traefik

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Build compiles Traefik into cacheDir unless it is already there, writing progress lines to
// progress; a cold build takes 5–15 minutes on two cores. The module is copied out of the
// read-only module cache and built unmodified. Concurrent builders serialise on a lock file and
// the binary appears atomically.
func Build(ctx context.Context, cacheDir string, progress io.Writer) (string, error) {
	out := BinaryIn(cacheDir)
	if executable(out) == nil {
		return out, nil
	}
	if progress == nil {
		progress = io.Discard
	}
	progress = &syncWriter{w: progress}
	srcRoot := filepath.Join(cacheDir, "src")
	if err := os.MkdirAll(srcRoot, 0o755); err != nil {
		return out, err
	}
	src := filepath.Join(srcRoot, "traefik-"+Version)
	unlock, err := lock(ctx, src+".lock", progress)
	if err != nil {
		return out, err
	}
	defer unlock()
	if executable(out) == nil { // built by whoever held the lock before us
		return out, nil
	}
	mod := "github.com/traefik/traefik/v3@" + Version
	var info struct{ Dir, Error string }
	data, err := goOutput(ctx, srcRoot, "mod", "download", "-json", mod)
	if jerr := json.Unmarshal(data, &info); jerr != nil || info.Error != "" || err != nil {
		return out, fmt.Errorf("traefik: go mod download %s: %v %s", mod, err, info.Error)
	}
	fmt.Fprintf(progress, "traefik: copying %s to %s\n", info.Dir, src)
	if err := os.RemoveAll(src); err != nil {
		return out, err
	}
	if err := copyTree(info.Dir, src); err != nil {
		return out, err
	}
	return out, goBuild(ctx, src, out, progress, "./cmd/traefik")
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

// goBuild, ticker and the helpers in gocmd.go and proc_*.go mirror lab/kubeapi's; they belong
// in a shared lab/internal package once the two builds are moved there.

// goBuild runs `go build -trimpath -o out args...` in dir with cgo off, building to a
// temporary name and renaming it into place.
func goBuild(ctx context.Context, dir, out string, progress io.Writer, args ...string) error {
	name := filepath.Base(out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	defer os.Remove(tmp)
	fmt.Fprintf(progress, "building %s (a cold build takes several minutes)\n", name)
	start := time.Now()
	stop := ticker(progress, name, start)
	err := goRun(ctx, dir, progress, append([]string{"build", "-trimpath", "-o", tmp}, args...)...)
	stop()
	if ctx.Err() != nil {
		err = ctx.Err() // "signal: killed" would hide that we were interrupted
	}
	if err != nil {
		return fmt.Errorf("building %s: %w", name, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(progress, "built %s in %s\n", out, time.Since(start).Round(time.Second))
	return nil
}

// ticker prints a line every 30s so that a long build does not look hung.
func ticker(w io.Writer, name string, start time.Time) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(w, "still building %s (%s)\n", name, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done) }
}
