package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnits: the installed units point at the binary and MNO_HOME,
// are hardened, and pass systemd-analyze verify; installing again changes
// nothing.
func TestSystemdUnits(t *testing.T) {
	dir := t.TempDir()
	bin, _ := os.Executable()
	home := filepath.Join(t.TempDir(), "mnohome")
	changed, err := installUnits(dir, bin, home)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 3 {
		t.Fatalf("wrote %v, want 3 units", changed)
	}
	for _, n := range []string{"mno-sync.service", "mno-watch.service"} {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		text := string(b)
		for _, want := range []string{"ExecStart=" + bin + " ", "Environment=MNO_HOME=" + home, "Environment=KUBECONFIG=" + home + "/kubeconfig", "NoNewPrivileges=yes",
			"ProtectSystem=strict", "ReadWritePaths=" + home, "PrivateTmp=yes"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", n, want)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mno-sync.service")); !strings.Contains(string(b), bin+" run --timeout 30m sync") {
		t.Errorf("mno-sync.service does not run `mno run sync`")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mno-watch.service")); !strings.Contains(string(b), bin+" watch --resync 1h --debounce 2s --listen 127.0.0.1:9090 sync") {
		t.Errorf("mno-watch.service does not run `mno watch … sync`")
	}
	if changed, _ := installUnits(dir, bin, home); len(changed) != 0 {
		t.Errorf("second install changed %v", changed)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze missing (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "mno-sync.service"),
		filepath.Join(dir, "mno-sync.timer"), filepath.Join(dir, "mno-watch.service")).CombinedOutput()
	// verify exits 0 on unknown or unparsable settings but reports them.
	if err != nil || strings.Contains(string(out), "ignoring") || strings.Contains(string(out), "Unknown") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
