//go:build unix

package toolcache

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Lock takes an exclusive flock on path, polling so that ctx can interrupt the wait, and says
// once on progress (if not nil) that it waits. Concurrent builders (two test binaries, two
// `make tools`) serialise on it; the kernel drops the lock if the holder dies, so a killed
// build never wedges the cache.
func Lock(ctx context.Context, path string, progress io.Writer) (unlock func(), err error) {
	return lockNoting(ctx, path, progress, nil, 0)
}

// lockNoting is Lock that, while it waits, prints what note returns (the
// progress of the builds that hold it up) every `every`.
func lockNoting(ctx context.Context, path string, progress io.Writer, note func() []string, every time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	var noted time.Time
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited && progress != nil {
			fmt.Fprintf(progress, "waiting for another build holding %s\n", path)
		}
		if note != nil && progress != nil && time.Since(noted) >= every {
			for _, l := range note() {
				fmt.Fprintf(progress, "waiting for %s\n", l)
			}
			noted = time.Now()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// setGroupKill puts cmd in its own process group and makes context cancellation kill the
// whole group.
func setGroupKill(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// busyLocks lists the *.lock files in dir, other than the lock file self
// (the caller's own), that a process holds now.
func busyLocks(dir, self string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	var busy []string
	for _, p := range files {
		name := strings.TrimSuffix(filepath.Base(p), ".lock")
		if filepath.Clean(p) == filepath.Clean(self) {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == syscall.EWOULDBLOCK {
			busy = append(busy, name)
		}
		f.Close()
	}
	return busy
}
