package hosts

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
)

// requirements are the binaries hosts need, with the Debian package of each.
var requirements = []struct{ bin, pkg string }{
	{"sshd", "openssh-server"},
	{"ip", "iproute2"},
	{"sudo", "sudo"},
	{"nsenter", "util-linux"},
	{"flock", "util-linux"},
	{"awk", "mawk"},
	{"sha256sum", "coreutils"},
	{"base64", "coreutils"},
}

// Check reports what this machine lacks to run hosts, naming the packages to
// install, or nil. Tests skip or fail on it (see hoststest).
func Check() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("hosts: lab hosts need Linux, not %s", runtime.GOOS)
	}
	var problems, pkgs []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not root (hosts need namespaces, mounts and sshd's privilege separation)")
	}
	for _, r := range requirements {
		if _, err := lookPath(r.bin); err != nil {
			problems = append(problems, r.bin+" not found")
			if !slices.Contains(pkgs, r.pkg) {
				pkgs = append(pkgs, r.pkg)
			}
		}
	}
	if !overlayAvailable() {
		problems = append(problems, "overlayfs not available (modprobe overlay)")
	}
	if len(problems) == 0 {
		return nil
	}
	msg := "hosts: " + strings.Join(problems, "; ")
	if len(pkgs) > 0 {
		msg += "; install with: apt-get install -y " + strings.Join(pkgs, " ")
	}
	return fmt.Errorf("%s", msg)
}

func overlayAvailable() bool {
	fss, _ := os.ReadFile("/proc/filesystems")
	if bytes.Contains(fss, []byte("\toverlay\n")) {
		return true
	}
	_, err := os.Stat("/sys/module/overlay")
	return err == nil
}
