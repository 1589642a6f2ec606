//go:build !linux

package kubeapi

import "os/exec"

// setDeathSignal does nothing where the kernel offers no parent-death signal; Server.Stop
// (and kubeapitest.Main) are then the only way the processes end.
func setDeathSignal(cmd *exec.Cmd) {}
