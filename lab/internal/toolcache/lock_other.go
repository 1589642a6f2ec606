//go:build !unix

package toolcache

import (
	"context"
	"errors"
	"io"
	"os/exec"
)

// Lock fails: building needs flock(2).
func Lock(ctx context.Context, path string, progress io.Writer) (func(), error) {
	return nil, errors.New("toolcache: building needs a Unix system")
}

func setGroupKill(cmd *exec.Cmd) {}
