package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Capabilities a lab needs besides being root: network namespaces, links and
// routes (CAP_NET_ADMIN), mounts and namespaces (CAP_SYS_ADMIN).
var capabilities = []struct {
	bit  uint
	name string
}{{12, "CAP_NET_ADMIN"}, {21, "CAP_SYS_ADMIN"}}

// CheckPrivileges returns ErrNotRoot, or an error naming the capabilities
// this process lacks (root in an unprivileged container), or nil.
func CheckPrivileges() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil // not Linux's /proc: hosts.Check says what is wrong
	}
	for _, line := range strings.Split(string(status), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil
		}
		var missing []string
		for _, c := range capabilities {
			if eff&(1<<c.bit) == 0 {
				missing = append(missing, c.name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("mno lab needs %s, which this process lacks (in a container, run it privileged)", strings.Join(missing, " and "))
		}
	}
	return nil
}
