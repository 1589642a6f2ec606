package kubeapi

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill cmd when the process that started it dies, so that a
// killed test binary does not leave etcd and kube-apiserver running.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true // a terminal's ^C reaches the test binary, which stops us in order
}
