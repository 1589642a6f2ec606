package ssh_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mno-sh/mno/engine"
)

// TestConnectIdentity: identity= logs in with another key of the control
// plane (MyNodeOne's root keys, for adopt): missing files in the list are
// skipped, the key is offered only to that connect, and its private key
// never appears in the report or the events.
func TestConnectIdentity(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	other := filepath.Join(e.home, "other_ed25519")
	line := writeIdentity(t, other)
	ak, err := h.ReadFile("/root/.ssh/authorized_keys")
	if err != nil {
		t.Fatal(err)
	}
	// Only the other key may log in now.
	if err := h.WriteFile("/root/.ssh/authorized_keys", []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(e.home, "missing_ed25519")
	r := e.run(t, fmt.Sprintf(`
def main(ctx):
    h = ssh.connect(H1.address, port = H1.port, host_key = H1.host_key, name = "n", identity = [%q, %q])
    print(h.run("echo in", read_only = True).stdout.strip())
`, missing, other), false)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v\n%s", r.exit, r.err, r.stderr)
	}
	named := false
	for _, ev := range r.events {
		named = named || ev.Type == "effect_start" && ev.Kind == "connect" && strings.Contains(ev.Desc, "identity "+missing+", "+other)
	}
	if !named {
		t.Errorf("the connect does not name the identity files: %+v", r.events)
	}
	if !strings.Contains(r.printed(), "in") {
		t.Errorf("no output of the command: %q", r.printed())
	}
	priv, _ := os.ReadFile(other)
	body := strings.Split(strings.TrimSpace(string(priv)), "\n")[1]
	for _, ev := range r.events {
		if strings.Contains(fmt.Sprint(ev), body[:20]) {
			t.Fatalf("private key material in an event: %+v", ev)
		}
	}
	if strings.Contains(r.stderr, body[:20]) {
		t.Fatal("private key material in the report")
	}

	// Without identity= the control plane key is refused: it is no longer authorised.
	r = e.run(t, `def main(ctx): ssh.connect(H1.address, port = H1.port, host_key = H1.host_key, name = "n")`, false)
	if r.exit != engine.ExitTargetFail || !strings.Contains(r.err.Error(), "refused the key") {
		t.Fatalf("exit %d, err %v: want the control plane key refused", r.exit, r.err)
	}
	// identity= with the other key refused names that file.
	if err := h.WriteFile("/root/.ssh/authorized_keys", ak, 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run(t, fmt.Sprintf(`def main(ctx): ssh.connect(H1.address, port = H1.port, host_key = H1.host_key, name = "n", identity = %q)`, other), false)
	if r.exit != engine.ExitTargetFail || !strings.Contains(r.err.Error(), "("+other+")") {
		t.Fatalf("exit %d, err %v: want the refusal to name %s", r.exit, r.err, other)
	}

	// Bad values: no file at all, relative paths, wrong types.
	for _, tc := range []struct{ arg, want string }{
		{fmt.Sprintf("%q", missing), "none of " + missing + " exists"},
		{`"id_ed25519"`, "not an absolute path"},
		{`[]`, "empty list"},
		{`42`, "want a private key file"},
		{`[1]`, "want file paths"},
		{fmt.Sprintf("%q", filepath.Join(e.home, "known_hosts_dir")), ""},
	} {
		if tc.want == "" {
			continue
		}
		r := e.run(t, fmt.Sprintf(`def main(ctx): ssh.connect(H1.address, port = H1.port, host_key = H1.host_key, name = "n", identity = %s)`, tc.arg), false)
		if r.exit == 0 || r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("identity=%s: exit %d, err %v; want %q", tc.arg, r.exit, r.err, tc.want)
		}
	}
}

// TestHostKeyProbe: ssh.host_key shows the key a host presents without
// trusting it (nothing recorded, no login), and the fingerprint is the one
// ssh-keygen prints for the host's ed25519 key.
func TestHostKeyProbe(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	r := e.run(t, `
def main(ctx):
    k = ssh.host_key(H1.address, port = H1.port, name = "n")
    print(k.type, k.fingerprint)
    print(k.key)
`, false)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v\n%s", r.exit, r.err, r.stderr)
	}
	if out := r.printed(); !strings.Contains(out, "ssh-ed25519 "+h.HostKeyFingerprint) || !strings.Contains(out, h.HostKey) {
		t.Errorf("probe printed something else than %s / %s:\n%s", h.HostKeyFingerprint, h.HostKey, out)
	}
	if p := r.effects("host_key"); len(p) != 1 || p[0].Write || !strings.Contains(p[0].Note, h.HostKeyFingerprint) {
		t.Errorf("host_key effect %+v: want one read noting the fingerprint", p)
	}
	if _, err := os.Stat(filepath.Join(e.home, "known_hosts")); err == nil {
		t.Error("a probe recorded the host key")
	}
	// A closed port is unreachable, not a failure of trust.
	r = e.run(t, `def main(ctx): ssh.host_key(H1.address, port = 1, name = "n", timeout = "2s")`, false)
	if r.exit != engine.ExitTargetFail || r.recap()["n"].Unreachable != 1 {
		t.Fatalf("closed port: exit %d recap %+v, want unreachable", r.exit, r.recap()["n"])
	}
}

// printed is what the script printed.
func (r runResult) printed() string {
	var b strings.Builder
	for _, ev := range r.events {
		if ev.Type == "print" {
			b.WriteString(ev.Message + "\n")
		}
	}
	return b.String()
}
