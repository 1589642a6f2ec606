//go:build !unix

package traefik

import (
	"context"
	"errors"
	"io"
	"os/exec"
)

func setGroupKill(cmd *exec.Cmd) {}

func lock(ctx context.Context, path string, progress io.Writer) (func(), error) {
	return nil, errors.New("traefik: building needs a Unix system")
}

func setProcessGroup(cmd *exec.Cmd) {}
