package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

func newKey(t *testing.T) xssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := xssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestBuildCommand runs the command lines build makes in a local sh, with
// the stdin prefix, to check quoting, env and the secret protocol end to end.
func TestBuildCommand(t *testing.T) {
	tests := []struct {
		name  string
		rc    remoteCmd
		stdin string
		want  string
		plain bool // the line is the command itself
	}{
		{name: "plain", rc: remoteCmd{line: "echo hi"}, want: "hi\n", plain: true},
		{name: "argv", rc: remoteCmd{argv: []string{"printf", "%s|", "a b", "it's", "$HOME"}}, want: "a b|it's|$HOME|"},
		{name: "timeout", rc: remoteCmd{line: "echo t", timeout: 5 * time.Second}, want: "t\n"},
		{name: "env", rc: remoteCmd{line: `printf '%s' "$A"`, env: map[string]string{"A": "x'y z"}}, want: "x'y z"},
		{name: "secret env then stdin",
			rc: remoteCmd{line: `printf '[%s][%s]' "$S" "$T"; cat`,
				env: map[string]string{"S": "line1\nline2\n", "T": "-n", "P": "p"}, secretEnv: map[string]bool{"S": true, "T": true}},
			stdin: "rest of stdin", want: "[line1\nline2\n][-n]rest of stdin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, prefix, err := tt.rc.build()
			if err != nil {
				t.Fatal(err)
			}
			if tt.plain != (line == tt.rc.line) {
				t.Errorf("line %q", line)
			}
			for k, v := range tt.rc.env {
				if tt.rc.secretEnv[k] && strings.Contains(line, v) {
					t.Errorf("secret %s in the command line %q", k, line)
				}
			}
			cmd := exec.Command("/bin/sh", "-c", line)
			cmd.Env = []string{"SHELL=/bin/sh", "PATH=" + os.Getenv("PATH")}
			cmd.Stdin = strings.NewReader(string(prefix) + tt.stdin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v: %s", line, err, out)
			}
			if string(out) != tt.want {
				t.Errorf("got %q, want %q (line %s)", out, tt.want, line)
			}
		})
	}
	if _, _, err := (remoteCmd{line: "true", env: map[string]string{"A-B": "x"}}).build(); err == nil {
		t.Error("invalid env name accepted")
	}
	line, _, _ := remoteCmd{line: "id", sudo: true, timeout: time.Minute}.build()
	if !strings.HasPrefix(line, "exec sudo -n -- /bin/sh -c ") || !strings.Contains(line, "timeout -k 2 60 /bin/sh -c id") {
		t.Errorf("sudo line %q", line)
	}
}

func TestParsePin(t *testing.T) {
	k := newKey(t)
	line := keyLine(k)
	fp := xssh.FingerprintSHA256(k)
	for _, in := range []string{line, line + " root@host", "  " + line + "\n", "[10.0.0.1]:2222 " + line} {
		got, gotFP, err := parsePin(in)
		if err != nil || got == nil || gotFP != "" || keyLine(got) != line {
			t.Errorf("parsePin(%q) = %v, %q, %v", in, got, gotFP, err)
		}
	}
	for _, in := range []string{fp, fp + "="} {
		got, gotFP, err := parsePin(in)
		if err != nil || got != nil || gotFP != fp {
			t.Errorf("parsePin(%q) = %v, %q, %v", in, got, gotFP, err)
		}
	}
	for _, in := range []string{"SHA256:abc", "ssh-ed25519", "MD5:aa:bb", "garbage"} {
		if _, _, err := parsePin(in); err == nil {
			t.Errorf("parsePin(%q) accepted", in)
		}
	}
}

func TestVerifyPins(t *testing.T) {
	k, other := newKey(t), newKey(t)
	for _, p := range []hostKeyPolicy{{pinKey: k}, {pinFP: xssh.FingerprintSHA256(k)}} {
		if _, err := p.verify("h:22", k); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
		_, err := p.verify("h:22", other)
		if err == nil || !strings.Contains(err.Error(), xssh.FingerprintSHA256(k)) || !strings.Contains(err.Error(), xssh.FingerprintSHA256(other)) {
			t.Errorf("mismatch error %v lacks both fingerprints", err)
		}
	}
}

// TestRecordKnownHost: lines are OpenSSH's ([addr]:port for a port other
// than 22), a concurrent flood records each host once, and a different key
// for a recorded host is refused.
func TestRecordKnownHost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "known_hosts")
	keys := map[string]xssh.PublicKey{"10.0.0.1:22": newKey(t), "10.0.0.2:2222": newKey(t), "host.example:22": newKey(t)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	recorded := 0
	for i := 0; i < 8; i++ {
		for hp, k := range keys {
			wg.Go(func() {
				p := &hostKeyPolicy{knownHosts: file, acceptNew: true}
				rec, err := p.verify(hp, k)
				if err != nil {
					t.Error(err)
				}
				if rec {
					mu.Lock()
					recorded++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if recorded != len(keys) {
		t.Errorf("recorded %d times, want %d", recorded, len(keys))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), data)
	}
	for _, want := range []string{"10.0.0.1 " + keyLine(keys["10.0.0.1:22"]), "[10.0.0.2]:2222 " + keyLine(keys["10.0.0.2:2222"]),
		"host.example " + keyLine(keys["host.example:22"])} {
		if !strings.Contains(string(data), want+"\n") {
			t.Errorf("known_hosts lacks %q:\n%s", want, data)
		}
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	p := &hostKeyPolicy{knownHosts: file, acceptNew: true}
	if _, err := p.verify("10.0.0.2:2222", newKey(t)); err == nil || !strings.Contains(err.Error(), "HOST KEY CHANGED") {
		t.Errorf("changed key: %v", err)
	}
	if _, err := p.verify("10.0.0.2:22", newKey(t)); err != nil {
		t.Errorf("another port is another host: %v", err)
	}
	if got := p.algorithms("10.0.0.1:22"); len(got) != 1 || got[0] != xssh.KeyAlgoED25519 {
		t.Errorf("algorithms for a known ed25519 host: %v", got)
	}
}

func TestParseStat(t *testing.T) {
	info, err := parseStat("ok 81a4 12 0 1001 root mno 1700000000")
	if err != nil {
		t.Fatal(err)
	}
	want := fileInfo{isRegular: true, size: 12, mode: 0o644, uid: 0, gid: 1001, owner: "root", group: "mno", mtime: 1700000000}
	if *info != want {
		t.Errorf("got %+v, want %+v", *info, want)
	}
	info, _ = parseStat("ok 43ed 4096 0 0 UNKNOWN root 1")
	if !info.isDir || info.mode != 0o1755 || info.owner != "" {
		t.Errorf("dir: %+v", *info)
	}
	if _, err := parseStat("ok 81a4 x"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestParseFacts(t *testing.T) {
	f, err := parseFacts("hostname=vps-1\nos=Linux\narch=aarch64\nuid=1000\nhome=/srv/home/admin\n--\n" +
		"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")
	if err != nil {
		t.Fatal(err)
	}
	want := facts{hostname: "vps-1", os: "linux", arch: "aarch64", distro: "debian", version: "12", home: "/srv/home/admin", uid: 1000}
	if *f != want {
		t.Errorf("got %+v, want %+v", *f, want)
	}
}

func TestCheckAddress(t *testing.T) {
	for _, ok := range []string{"10.0.0.1", "vps-1.example.com", "fe80::1", "::1"} {
		if err := checkAddress(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "root@h", "h:22", "a b", "h/x"} {
		if err := checkAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSudoRefusal(t *testing.T) {
	if err := sudoRefusal("u", "h", []byte("sudo: a password is required\n")); err == nil || !strings.Contains(err.Error(), "/etc/sudoers.d") {
		t.Errorf("got %v", err)
	}
	if err := sudoRefusal("u", "h", []byte("some other failure")); err != nil {
		t.Errorf("got %v", err)
	}
}
