//go:build !unix

package toolcache

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"time"
)

// Lock fails: building needs flock(2).
func Lock(ctx context.Context, path string, progress io.Writer) (func(), error) {
	return nil, errors.New("toolcache: building needs a Unix system")
}

func lockNoting(ctx context.Context, path string, progress io.Writer, note func() []string, every time.Duration) (func(), error) {
	return Lock(ctx, path, progress)
}

func setGroupKill(cmd *exec.Cmd) {}

func busyLocks(dir, self string) []string { return nil }
