//go:build !linux

package proc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal does nothing where the kernel has no parent-death signal;
// the owners' Stop methods end their children.
func setDeathSignal(cmd *exec.Cmd) {}

func setSession(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = false
	cmd.SysProcAttr.Setsid = true
}
