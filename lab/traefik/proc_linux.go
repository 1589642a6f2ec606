package traefik

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill cmd when the thread that started it exits (in practice,
// when this process dies), unless the caller chose a signal. A goroutine locked to its thread
// that starts Traefik and then exits without unlocking also ends it: start from a goroutine
// that stays, or unlock the thread.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if cmd.SysProcAttr.Pdeathsig == 0 {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
}
