package ssh_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestHostileStaging (issue 13 item 4): a staging directory that is a
// symlink, belongs to someone else or is writable by others is never used —
// mno writes through a fresh private one beside it and removes it — for
// SFTP writes as the login user and for sudo writes alike, on a real sshd.
// The hostile directory must not even be touched (its mtime stays), since a
// temporary file created there could be swapped before the rename.
func TestHostileStaging(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	sh := func(script string) string {
		t.Helper()
		out, err := h.Command(context.Background(), false, "sh", "-ec", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	// The attacker's directory: nosudo's, writable by everyone.
	sh(`mkdir -p /tmp/evil && chown nosudo /tmp/evil && chmod 0777 /tmp/evil
install -d -o mno -g mno /home/mno/a /home/mno/b /home/mno/c /home/mno/c/d
mkdir -p /opt/x /opt/y /srv/z
ln -s /tmp/evil /home/mno/.mno-staging                        # symlink (SFTP as mno)
install -d -o mno -g mno -m 0777 /home/mno/c/.mno-staging      # mno's, but 0777
ln -s /tmp/evil /opt/.mno-staging                              # symlink (sudo)
install -d -o nosudo -m 0700 /srv/.mno-staging                 # someone else's (sudo)`)
	mtime := func(p string) time.Time {
		fi, err := h.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	before := map[string]time.Time{"/tmp/evil": mtime("/tmp/evil"), "/home/mno/c/.mno-staging": mtime("/home/mno/c/.mno-staging"),
		"/srv/.mno-staging": mtime("/srv/.mno-staging")}
	time.Sleep(20 * time.Millisecond)

	r := e.run(t, `
def main(ctx):
    h = ssh.connect(H1.address, port = H1.port, host_key = H1.host_key, name = H1.name, user = "mno")
    h.put("/home/mno/a/cfg", "via sftp\n")
    h.put("/home/mno/a/cfg2", "again\n")
    h.put("/home/mno/c/d/cfg", "via sftp, 0777 stage\n", mode = 0o640)
    h.put("/opt/x/cfg", "via sudo\n", sudo = True)
    h.edit("/srv/z/cfg", lambda old: "edited via sudo\n", sudo = True)
`, false)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v\n%s", r.exit, r.err, r.stderr)
	}
	for p, want := range map[string]string{"/home/mno/a/cfg": "via sftp\n", "/home/mno/a/cfg2": "again\n",
		"/home/mno/c/d/cfg": "via sftp, 0777 stage\n", "/opt/x/cfg": "via sudo\n", "/srv/z/cfg": "edited via sudo\n"} {
		got, err := h.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", p, got, err, want)
		}
	}
	for p, was := range before {
		if now := mtime(p); !now.Equal(was) {
			t.Errorf("the hostile staging directory %s was written to (mtime %v → %v)", p, was, now)
		}
	}
	if out := sh(`ls -A /tmp/evil /srv/.mno-staging /home/mno/c/.mno-staging`); strings.Contains(out, ".tmp") {
		t.Errorf("temporary files left in hostile directories:\n%s", out)
	}
	// The fresh directories are gone again; the hostile ones are left as they were.
	if out := sh(`ls -A /home/mno /home/mno/c /opt /srv`); strings.Contains(out, ".mno-staging.") {
		t.Errorf("fresh staging directories left behind:\n%s", out)
	}
	if out := sh(`readlink /home/mno/.mno-staging; stat -c '%U %a' /srv/.mno-staging /home/mno/c/.mno-staging`); out != "/tmp/evil\nnosudo 700\nmno 777\n" {
		t.Errorf("hostile directories changed:\n%s", out)
	}
}
