//go:build !unix

package traefik

import "os/exec"

func setProcessGroup(cmd *exec.Cmd) {}
