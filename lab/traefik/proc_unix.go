//go:build unix

package traefik

import (
	"os/exec"
	"syscall"
)

// setProcessGroup keeps a terminal's ^C away from Traefik, so that the test or lab stops it in
// order rather than all processes racing.
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
