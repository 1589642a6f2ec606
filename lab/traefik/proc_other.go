//go:build !linux

package traefik

import "os/exec"

// setDeathSignal does nothing where the kernel offers no parent-death signal; Process.Stop is
// then the only way Traefik ends.
func setDeathSignal(cmd *exec.Cmd) {}
