package hosts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
	"golang.org/x/crypto/ssh"
)

// TestHosts runs three real sshd hosts and checks what playbooks rely on.
func TestHosts(t *testing.T) {
	t.Parallel()
	key, authorized := hoststest.NewKey(t)
	bound := t.TempDir() // under /tmp, which the hosts cover with their own tmpfs
	if err := os.WriteFile(filepath.Join(bound, "tool"), []byte("from the machine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bound, "tool.sh"), []byte("#!/bin/sh\necho bound tool ran as $(id -un)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lab := hoststest.Start(t, 3,
		hosts.NamePrefix("laptop"),
		hosts.AuthorizedKeys(authorized),
		hosts.Shims("apt-get", "systemctl", "tailscale", "curl"),
		hosts.FullShimStdin(),
		hosts.Bind(bound),
	)
	h1, h2, h3 := lab.Host("laptop-1"), lab.Host("laptop-2"), lab.Host("laptop-3")
	if h1 == nil || h2 == nil || h3 == nil {
		t.Fatalf("hosts %v, want laptop-1..3", lab.Hosts())
	}
	t.Logf("network %s; %s at %s, %s at %s", lab.Network(), h1.Name, h1.Endpoint(), h2.Name, h2.Endpoint())

	t.Run("identity", func(t *testing.T) {
		seen := map[string]bool{}
		for _, h := range lab.Hosts() {
			pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.HostKey))
			if err != nil || pub.Type() != ssh.KeyAlgoED25519 {
				t.Fatalf("%s: HostKey %q: %v", h.Name, h.HostKey, err)
			}
			if got := ssh.FingerprintSHA256(pub); got != h.HostKeyFingerprint || !strings.HasPrefix(got, "SHA256:") {
				t.Errorf("%s: fingerprint %s, HostKeyFingerprint %s", h.Name, got, h.HostKeyFingerprint)
			}
			for _, v := range []string{h.HostKey, h.Endpoint(), h.Dir} {
				if seen[v] {
					t.Errorf("%s: %s shared with another host", h.Name, v)
				}
				seen[v] = true
			}
			out, _, _ := hoststest.Run(t, hoststest.Dial(t, h, "root", key), "hostname; cat /etc/ssh/ssh_host_ed25519_key.pub")
			if !strings.HasPrefix(out, h.Name+"\n"+h.HostKey+" ") {
				t.Errorf("%s: hostname and host key inside: %q", h.Name, out)
			}
		}
	})

	t.Run("host key checked strictly", func(t *testing.T) {
		cfg := h2.ClientConfig("root", key)
		cfg.HostKeyCallback = ssh.FixedHostKey(h1.PublicKey())
		if c, err := ssh.Dial("tcp", h2.Endpoint(), cfg); err == nil {
			c.Close()
			t.Fatalf("dialing %s with %s's host key succeeded", h2.Name, h1.Name)
		}
	})

	t.Run("filesystems are separate", func(t *testing.T) {
		machine, err := os.ReadFile("/etc/hosts")
		if err != nil {
			t.Fatal(err)
		}
		before2, err := h2.ReadFile("/etc/hosts")
		if err != nil {
			t.Fatal(err)
		}
		c := hoststest.Dial(t, h1, "root", key)
		_, stderr, code := hoststest.Run(t, c, `sh -c 'echo "10.9.9.9 mno-hosts-test" >> /etc/hosts && mkdir -p /etc/traefik/dynamic && printf "http: {}\n" > /etc/traefik/dynamic/mno.yml'`)
		if code != 0 {
			t.Fatalf("writing on %s: %d %s", h1.Name, code, stderr)
		}
		got1, err := h1.ReadFile("/etc/hosts")
		if err != nil || !bytes.Contains(got1, []byte("10.9.9.9 mno-hosts-test\n")) {
			t.Errorf("%s:/etc/hosts = %q, %v; want the new line", h1.Name, got1, err)
		}
		if got2, err := h2.ReadFile("/etc/hosts"); err != nil || !bytes.Equal(got2, before2) {
			t.Errorf("%s:/etc/hosts changed: %q, %v", h2.Name, got2, err)
		}
		if now, err := os.ReadFile("/etc/hosts"); err != nil || !bytes.Equal(now, machine) {
			t.Errorf("this machine's /etc/hosts changed: %q, %v", now, err)
		}
		fi, err := h1.Stat("/etc/traefik/dynamic/mno.yml")
		if err != nil || fi.Size() != int64(len("http: {}\n")) || time.Since(fi.ModTime()) > time.Minute {
			t.Errorf("%s: stat mno.yml = %v, %v", h1.Name, fi, err)
		}
		if _, err := h2.Stat("/etc/traefik/dynamic/mno.yml"); !os.IsNotExist(err) {
			t.Errorf("%s sees %s's file: %v", h2.Name, h1.Name, err)
		}
		if _, err := os.Stat("/etc/traefik/dynamic/mno.yml"); !os.IsNotExist(err) {
			t.Errorf("this machine got the host's file: %v", err)
		}
	})

	t.Run("the machine is read-only inside", func(t *testing.T) {
		c := hoststest.Dial(t, h2, "root", key)
		for _, tc := range []struct {
			path     string
			writable bool
		}{
			{path: "/mno-escape-test"},
			{path: "/usr/bin/mno-escape-test"},
			{path: "/etc/mno-escape-test", writable: true},
			{path: "/var/mno-escape-test", writable: true},
			{path: "/home/mno-escape-test", writable: true},
			{path: "/usr/local/mno-escape-test", writable: true},
			{path: "/tmp/mno-escape-test", writable: true},
		} {
			if _, err := os.Lstat(tc.path); !os.IsNotExist(err) {
				t.Fatalf("%s exists on this machine before the test (%v); remove it", tc.path, err)
			}
			_, stderr, code := hoststest.Run(t, c, "echo escape > "+tc.path)
			if tc.writable {
				if got, err := h2.ReadFile(tc.path); code != 0 || err != nil || string(got) != "escape\n" {
					t.Errorf("writing %s inside: exit %d %q; reads back %q, %v", tc.path, code, stderr, got, err)
				}
			} else {
				if code == 0 || !strings.Contains(stderr, "Read-only file system") {
					t.Errorf("writing %s inside: exit %d %q; want EROFS", tc.path, code, stderr)
				}
				if err := h2.WriteFile(tc.path, []byte("escape\n"), 0o644); !errors.Is(err, syscall.EROFS) {
					t.Errorf("WriteFile(%s) from the test side: %v; want EROFS", tc.path, err)
				}
			}
			if _, err := os.Lstat(tc.path); !os.IsNotExist(err) {
				os.Remove(tc.path)
				t.Errorf("%s appeared on this machine (%v)", tc.path, err)
			}
		}
		// The kernel's filesystems and bound binaries still work.
		out, stderr, code := hoststest.Run(t, c, "echo 0 > /proc/self/oom_score_adj && echo x > /dev/null && "+
			"test -r /sys/class/net/lo/flags && "+filepath.Join(bound, "tool.sh"))
		if code != 0 || out != "bound tool ran as root\n" {
			t.Errorf("/proc, /dev, /sys and a bound binary inside: %q, %q, exit %d", out, stderr, code)
		}
	})

	t.Run("files from the test side", func(t *testing.T) {
		if err := h3.WriteFile("/etc/mno-planted", []byte("planted\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		out, _, code := hoststest.Run(t, hoststest.Dial(t, h3, "root", key), "stat -c %a /etc/mno-planted; cat /etc/mno-planted")
		if code != 0 || out != "640\nplanted\n" {
			t.Errorf("planted file inside: %q (%d)", out, code)
		}
		if _, err := h3.ReadFile("/etc/shadow-does-not-exist"); !os.IsNotExist(err) {
			t.Errorf("missing file: %v, want not exist", err)
		}
	})

	t.Run("users and sudo", func(t *testing.T) {
		for _, tc := range []struct {
			user, cmd, stdout, stderr string
			ok                        bool
		}{
			{user: "root", cmd: "id -un", stdout: "root\n", ok: true},
			{user: "mno", cmd: "id -un; echo $HOME; stat -c %U /home/mno", stdout: "mno\n/home/mno\nmno\n", ok: true},
			{user: "mno", cmd: "sudo -n id -un", stdout: "root\n", ok: true},
			{user: "nosudo", cmd: "id -un", stdout: "nosudo\n", ok: true},
			{user: "nosudo", cmd: "sudo -n true", stderr: "a password is required"},
		} {
			stdout, stderr, code := hoststest.Run(t, hoststest.Dial(t, h1, tc.user, key), tc.cmd)
			if (code == 0) != tc.ok || stdout != tc.stdout || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("%s: %q = %q, %q, exit %d; want %q, %q, ok=%v", tc.user, tc.cmd, stdout, stderr, code, tc.stdout, tc.stderr, tc.ok)
			}
		}
		if _, err := os.Stat("/home/nosudo"); err == nil {
			t.Errorf("/home/nosudo exists on this machine")
		}
	})

	t.Run("shims", func(t *testing.T) {
		h := h2
		if err := h.ClearShimCalls(); err != nil {
			t.Fatal(err)
		}
		for key, r := range map[string]hosts.ShimResponse{
			"tailscale ip -4":              {Stdout: "100.64.0.5\n"},
			"systemctl is-active":          {Stdout: "inactive\n", Code: 3},
			"curl -sfL https://get.k3s.io": {Stdout: "echo k3s installed\n"},
			"kubectl":                      {Stderr: "no cluster\n", Code: 1},
			"tailscale":                    {Stdout: "tailscale default\n"},
		} {
			if err := h.SetShim(key, r); err != nil {
				t.Fatal(err)
			}
		}
		c := hoststest.Dial(t, h, "mno", key)
		for _, tc := range []struct {
			cmd, stdout, stderr string
			code                int
		}{
			{cmd: "tailscale ip -4", stdout: "100.64.0.5\n"},
			{cmd: "tailscale ip -6", stdout: "tailscale default\n"},
			{cmd: "systemctl is-active k3s", stdout: "inactive\n", code: 3},
			{cmd: "sudo -n systemctl restart k3s", stdout: ""},
			{cmd: "curl -sfL https://get.k3s.io | sh -", stdout: "k3s installed\n"},
			{cmd: "kubectl get nodes", stderr: "no cluster\n", code: 1},
			{cmd: `printf 'deb x\n' | sudo -n apt-get install -y "two words" 'q"uote\' "$(printf 'new\nline')" é`},
			{cmd: "command -v systemctl; sudo -n sh -c 'command -v systemctl'", stdout: "/usr/local/bin/systemctl\n/usr/local/sbin/systemctl\n"},
		} {
			stdout, stderr, code := hoststest.Run(t, c, tc.cmd)
			if stdout != tc.stdout || stderr != tc.stderr || code != tc.code {
				t.Errorf("%q = %q, %q, exit %d; want %q, %q, exit %d", tc.cmd, stdout, stderr, code, tc.stdout, tc.stderr, tc.code)
			}
		}
		if out, _, _ := hoststest.Run(t, hoststest.Dial(t, h, "root", key), "command -v apt-get"); out != "/usr/local/sbin/apt-get\n" {
			t.Errorf("root's apt-get is %q", out)
		}

		calls, err := h.ShimCalls()
		if err != nil {
			t.Fatal(err)
		}
		type call struct {
			user, sudoUser string
			argv           []string
			code           int
		}
		want := []call{
			{"mno", "", []string{"tailscale", "ip", "-4"}, 0},
			{"mno", "", []string{"tailscale", "ip", "-6"}, 0},
			{"mno", "", []string{"systemctl", "is-active", "k3s"}, 3},
			{"root", "mno", []string{"systemctl", "restart", "k3s"}, 0},
			{"mno", "", []string{"curl", "-sfL", "https://get.k3s.io"}, 0},
			{"mno", "", []string{"kubectl", "get", "nodes"}, 1},
			{"root", "mno", []string{"apt-get", "install", "-y", "two words", `q"uote\`, "new\nline", "é"}, 0},
		}
		var got []call
		for _, c := range calls {
			got = append(got, call{c.User, c.SudoUser, c.Argv, c.Code})
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("shim calls:\n got %+v\nwant %+v", got, want)
		}
		apt := calls[6]
		sum := sha256.Sum256([]byte("deb x\n"))
		if apt.StdinSHA256 != hex.EncodeToString(sum[:]) || apt.StdinLen != 6 || string(apt.Stdin) != "deb x\n" {
			t.Errorf("apt-get stdin recorded as %s/%d/%q", apt.StdinSHA256, apt.StdinLen, apt.Stdin)
		}
		if time.Since(apt.Time) > time.Minute || time.Since(apt.Time) < 0 {
			t.Errorf("apt-get call time %v", apt.Time)
		}
		if other, err := h1.ShimCalls(); err != nil || len(other) != 0 {
			t.Errorf("%s recorded %v, %v", h1.Name, other, err)
		}
	})

	t.Run("command inside", func(t *testing.T) {
		ctx := context.Background()
		out, err := h3.Command(ctx, true, "sh", "-c", "hostname; cat "+filepath.Join(bound, "tool")).Output()
		if err != nil || string(out) != h3.Name+"\nfrom the machine\n" {
			t.Errorf("command: %q, %v", out, err)
		}
		if err := h3.Command(ctx, false, "sh", "-c", "echo x > "+filepath.Join(bound, "tool")).Run(); err == nil {
			t.Errorf("bound path is writable inside the host")
		}
		// A host keeps no other namespace alive through the mounts it copied.
		mounts, err := h3.Command(ctx, false, "cat", "/proc/self/mountinfo").Output()
		if err != nil || bytes.Contains(mounts, []byte(" - nsfs ")) || bytes.Contains(mounts, []byte("/run/netns")) {
			t.Errorf("mounts inside %s (%v):\n%s", h3.Name, err, mounts)
		}
		if lab.Network() != hosts.NetworkNamespaces {
			return
		}
		// The hosts share a network: host 3 reaches host 1's sshd.
		out, err = h3.Command(ctx, true, "bash", "-c", "exec 3<>/dev/tcp/"+h1.Addr+"/22; head -c 7 <&3").Output()
		if err != nil || string(out) != "SSH-2.0" {
			t.Errorf("%s -> %s:22: %q, %v", h3.Name, h1.Addr, out, err)
		}
		out, err = h3.Command(ctx, true, "ip", "-4", "-o", "addr", "show", "eth0").Output()
		if err != nil || !strings.Contains(string(out), " "+h3.Addr+"/24 ") {
			t.Errorf("eth0 inside: %q, %v", out, err)
		}
	})
}
