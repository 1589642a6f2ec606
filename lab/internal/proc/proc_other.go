//go:build !linux

package proc

import "os/exec"

// setDeathSignal does nothing where the kernel has no parent-death signal;
// the owners' Stop methods end their children.
func setDeathSignal(cmd *exec.Cmd) {}
