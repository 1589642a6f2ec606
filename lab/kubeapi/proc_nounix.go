//go:build !unix

package kubeapi

import (
	"context"
	"errors"
	"io"
	"os/exec"
)

func setGroupKill(cmd *exec.Cmd) {}

func lock(ctx context.Context, path string, progress io.Writer) (func(), error) {
	return nil, errors.New("kubeapi: building needs a Unix system")
}
