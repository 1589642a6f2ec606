package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mno-sh/mno/lab/internal/proc"
	"github.com/mno-sh/mno/lab/internal/toolcache"
	"github.com/mno-sh/mno/lab/kubeapi"
	"github.com/mno-sh/mno/lab/traefik"
)

// TraefikWaitLimit is how long a VPS's docker stand-in waits for a Traefik
// build still running in the background: less than the 5 minutes a
// playbook's command may take by default, so that add-vps fails with the
// build's progress rather than a timeout. A build estimated to need longer
// fails it at once.
const TraefikWaitLimit = 4*time.Minute + 30*time.Second

// tooling is what Up found or started of the helper binaries.
type tooling struct {
	dir     string
	api     kubeapi.Binaries
	traefik string // its path, built or not
	// background is the Traefik build Up left running (nil: none), which a
	// failed Up stops.
	background *proc.Ref
}

// tools returns the helper binaries. kube-apiserver and etcd are built now if
// missing: nothing starts without them. Traefik only matters to a lab with a
// VPS: an anonymous lab (mno test) builds it now too, a named one (mno lab
// up) starts its build in the background first — it downloads and plans
// while kube-apiserver compiles, then compiles after it — and comes up
// meanwhile; its VPSes' docker stand-in waits for the build (WaitForTool).
// o.NoBuild fails on a missing binary instead.
func tools(ctx context.Context, o Options, progress io.Writer) (t tooling, err error) {
	if t.dir = o.CacheDir; t.dir == "" {
		if t.dir, err = toolcache.Dir(); err != nil {
			return t, err
		}
	}
	t.api, t.traefik = kubeapi.BinariesIn(t.dir), traefik.BinaryIn(t.dir)
	needTraefik := o.VPS > 0
	if o.NoBuild {
		need := []string{t.api.APIServer, t.api.Etcd}
		if needTraefik {
			need = append(need, t.traefik)
		}
		for _, p := range need {
			if err := toolcache.Executable(p); err != nil {
				return t, err
			}
		}
		return t, nil
	}
	missingAPI := toolcache.Executable(t.api.APIServer) != nil || toolcache.Executable(t.api.Etcd) != nil
	missingTraefik := needTraefik && toolcache.Executable(t.traefik) != nil
	background := missingTraefik && o.Name != ""
	switch {
	case missingAPI && background:
		fmt.Fprintf(progress, "building kube-apiserver %s and etcd %s into %s, once (a cold build took 15 minutes on two shared cores); "+
			"Traefik %s builds in the background meanwhile and after\n", kubeapi.KubernetesVersion, kubeapi.EtcdVersion, t.dir, traefik.Version)
	case missingAPI:
		fmt.Fprintf(progress, "building kube-apiserver %s and etcd %s into %s, once (a cold build took 15 minutes on two shared cores)\n",
			kubeapi.KubernetesVersion, kubeapi.EtcdVersion, t.dir)
	}
	if background {
		ref, log, err := startBackgroundBuild(o.Exe, t.dir)
		if err != nil {
			return t, fmt.Errorf("starting Traefik's build in the background: %w", err)
		}
		t.background = &ref
		fmt.Fprintf(progress, "building Traefik %s in the background (process %d, log %s); the lab does not wait for it\n", traefik.Version, ref.PID, log)
		defer func() {
			if err != nil {
				_ = t.stopBackground()
			}
		}()
	}
	if t.api, err = kubeapi.Build(ctx, t.dir, progress); err != nil {
		return t, err
	}
	if missingTraefik && !background {
		if t.traefik, err = traefik.Build(ctx, t.dir, progress, false); err != nil {
			return t, err
		}
	}
	return t, nil
}

// stopBackground ends the background build Up started (its compiled packages
// stay in Go's build cache for the next try).
func (t tooling) stopBackground() error {
	if t.background == nil {
		return nil
	}
	return t.background.Stop(5 * time.Second)
}

// startBackgroundBuild starts `mno lab build-traefik` detached, its output in
// the build's log.
func startBackgroundBuild(exe, cacheDir string) (proc.Ref, string, error) {
	log := toolcache.LogPath(cacheDir, traefik.Name())
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		return proc.Ref{}, log, err
	}
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return proc.Ref{}, log, err
	}
	defer f.Close()
	cmd := exec.Command(exe, "lab", "build-traefik", "--cache", cacheDir)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "MNO_CACHE="+cacheDir)
	if _, err := proc.StartDetached(cmd); err != nil {
		return proc.Ref{}, log, err
	}
	ref, err := proc.RefOf(cmd.Process.Pid)
	return ref, log, err
}

// BuildTraefik builds Traefik into cacheDir, queued behind any other build of
// the cache: what `mno lab build-traefik`, which Up starts in the
// background, runs.
func BuildTraefik(ctx context.Context, cacheDir string, progress io.Writer) error {
	start := time.Now()
	_, err := traefik.Build(ctx, cacheDir, progress, true)
	if err == nil {
		fmt.Fprintf(progress, "build-traefik: done in %s\n", time.Since(start).Round(time.Second))
	}
	return err
}

// ErrToolTooLong: a tool still builds and will not be ready within the wait.
var ErrToolTooLong = toolcache.ErrTooLong

// WaitForTool waits at most limit for binary, which the build called name
// (e.g. traefik-v3.6.12) in cacheDir produces, printing the build's progress
// on progress every 30 s. It fails at once when the build is estimated to
// take longer (an error wrapping ErrToolTooLong), and when no build of it
// runs or the build failed (naming its log).
func WaitForTool(ctx context.Context, cacheDir, name, binary string, progress io.Writer, limit time.Duration) error {
	err := toolcache.Wait(ctx, cacheDir, name, binary, progress, 30*time.Second, limit)
	if errors.Is(err, toolcache.ErrTooLong) {
		return fmt.Errorf("%s is %w in the background, longer than a playbook's command may wait here (%s): %s.\n"+
			"Everything before this step is done; run the playbook again once `mno lab status` no longer lists the build",
			name, ErrToolTooLong, limit, strings.TrimPrefix(err.Error(), toolcache.ErrTooLong.Error()+": "))
	}
	return err
}

// Builds describes the builds of helper binaries running now (in the
// background, or a `make tools`) and those whose last try failed, one line
// each, with their logs.
func Builds() []string {
	dir, err := toolcache.Dir()
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range append(toolcache.Running(dir), toolcache.Failed(dir)...) {
		line := s.Line()
		if log := toolcache.LogPath(dir, s.Name); fileExists(log) {
			line += " (log " + log + ")"
		}
		if s.Phase == toolcache.PhaseFailed {
			line += "; `make tools` or `mno lab up` tries again"
		}
		out = append(out, line)
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// toolDirs are the cache directories a lab's nodes see (read-only): the
// binaries, one of which may still be building, and the builds' status.
func (t tooling) toolDirs() ([]string, error) {
	dirs := []string{filepath.Join(t.dir, "bin"), filepath.Join(t.dir, "status")}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}
