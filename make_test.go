package mno

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeDeps: `make deps` (run by `make lab` and .ci/run) installs exactly
// the missing packages of the Makefile's list with apt-get, saying which
// before it does, and does nothing when none is missing. dpkg-query and
// apt-get are stand-ins that record their arguments.
func TestMakeDeps(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	if os.Geteuid() != 0 {
		t.Skip("make deps installs only as root")
	}
	for _, tc := range []struct {
		name      string
		installed string // packages dpkg-query reports installed ("all": every one)
		want      string // apt-get install's packages; "" for no apt-get at all
	}{
		{"fresh machine", "", "openssh-server openssh-client sudo iproute2 util-linux procps coreutils mawk systemd curl iptables"},
		{"some present", "openssh-client util-linux procps coreutils mawk", "openssh-server sudo iproute2 systemd curl iptables"},
		{"all present", "all", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			log := filepath.Join(bin, "log")
			stub := func(name, script string) {
				if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			stub("dpkg-query", `pkg=$3
for p in `+tc.installed+`; do
	if [ "$p" = all ] || [ "$p" = "$pkg" ]; then printf 'install ok installed'; exit 0; fi
done
exit 1
`)
			stub("apt-get", `echo "apt-get $*" >>`+log+"\n")
			cmd := exec.Command("make", "-s", "deps")
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make deps: %v\n%s", err, out)
			}
			calls, _ := os.ReadFile(log)
			if tc.want == "" {
				if len(calls) > 0 || len(out) > 0 {
					t.Errorf("nothing missing, yet make deps said %q and ran %q", out, calls)
				}
				return
			}
			wantCalls := "apt-get update -qq\napt-get install -y -qq " + tc.want + "\n"
			if string(calls) != wantCalls {
				t.Errorf("apt-get ran:\n%s\nwant:\n%s", calls, wantCalls)
			}
			if !strings.Contains(string(out), "deps: installing the Debian packages the lab and the tests need: "+tc.want) {
				t.Errorf("make deps did not say which packages first:\n%s", out)
			}
		})
	}
}
