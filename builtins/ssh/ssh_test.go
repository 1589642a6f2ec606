package ssh_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// pin is the Starlark to connect to HOSTS[i] with its key pinned.
const pin = `ssh.connect(%s.address, port = %[1]s.port, host_key = %[1]s.host_key, name = %[1]s.name%s)`

func connectTo(h string, extra string) string { return fmt.Sprintf(pin, h, extra) }

func TestHostKeysKnownHosts(t *testing.T) {
	e := newEnv(t, 3)
	kh := filepath.Join(e.home, "known_hosts")
	h1 := e.lab.Hosts()[0]

	// Unknown: a failed effect (exit 2) whose error says how to enrol.
	r := e.run(t, `def main(ctx): ssh.connect(H1.address, port = H1.port, name = H1.name)`, false)
	if r.exit != engine.ExitTargetFail {
		t.Fatalf("exit %d, want 2: %v", r.exit, r.err)
	}
	msg := r.err.Error()
	for _, want := range []string{"is unknown", "presented ssh-ed25519 " + h1.HostKeyFingerprint,
		`host_key="` + h1.HostKey + `"`, "accept_new_host_key=True", kh} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if c := r.recap()[h1.Name]; c.Failed != 1 || c.Unreachable != 0 {
		t.Errorf("recap %+v, want failed=1", c)
	}
	if _, err := os.Stat(kh); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("known_hosts written without accept_new_host_key: %v", err)
	}

	// accept_new_host_key from 12 threads at once (4 per host): each key is
	// recorded once, and the journal says so.
	r = e.run(t, `
def one(h):
    return ssh.connect(h.address, port = h.port, name = h.name, accept_new_host_key = True).fingerprint
def main(ctx):
    rs = parallel(one, HOSTS * 4, limit = 12)
    for r in rs:
        if not r.ok:
            fail(r.error)
`, false)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v\n%s", r.exit, r.err, r.stderr)
	}
	recorded := 0
	for _, ev := range r.effects("connect") {
		if ev.Note == "host key recorded" {
			recorded++
		}
	}
	if recorded != 3 {
		t.Errorf("%d connects note \"host key recorded\", want 3", recorded)
	}
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(kh)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", fi.Mode().Perm())
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("known_hosts has %d lines, want 3:\n%s", len(lines), data)
	}
	for _, h := range e.lab.Hosts() {
		if !strings.Contains(string(data), h.KnownHostsLine()) {
			t.Errorf("known_hosts lacks %q:\n%s", h.KnownHostsLine(), data)
		}
	}

	// Known now: no flag needed.
	r = e.run(t, `def main(ctx): print(ssh.connect(H1.address, port = H1.port).run("hostname").stdout.strip())`, false)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v", r.exit, r.err)
	}

	// Changed: always an error with both fingerprints, even with
	// accept_new_host_key, and known_hosts stays as it is.
	h2 := e.lab.Hosts()[1]
	forged := strings.Replace(string(data), h1.KnownHostsLine(), strings.Replace(h2.KnownHostsLine(), h2.Addr, h1.Addr, 1), 1)
	if forged == string(data) {
		t.Fatal("could not forge the known_hosts line")
	}
	if err := os.WriteFile(kh, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run(t, `def main(ctx): ssh.connect(H1.address, port = H1.port, accept_new_host_key = True)`, false)
	if r.exit != engine.ExitTargetFail {
		t.Fatalf("exit %d, want 2: %v", r.exit, r.err)
	}
	msg = r.err.Error()
	for _, want := range []string{"HOST KEY CHANGED", "expected ssh-ed25519 " + h2.HostKeyFingerprint,
		"presented ssh-ed25519 " + h1.HostKeyFingerprint, kh + ":"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if after, _ := os.ReadFile(kh); string(after) != forged {
		t.Errorf("known_hosts changed after a key mismatch:\n%s", after)
	}
}

func TestConnectErrors(t *testing.T) {
	e := newEnv(t, 2)
	h1, h2 := e.lab.Hosts()[0], e.lab.Hosts()[1]

	t.Run("unreachable within the timeout", func(t *testing.T) {
		if err := h2.Partition(); err != nil {
			hoststest.Unavailable(t, "partitions: %v", err)
		}
		defer h2.Heal()
		start := time.Now()
		r := e.run(t, `def main(ctx): `+connectTo("H2", `, timeout = "2s"`), false)
		took := time.Since(start)
		if r.exit != engine.ExitTargetFail {
			t.Fatalf("exit %d, want 2: %v", r.exit, r.err)
		}
		if !strings.Contains(r.err.Error(), "cannot reach "+h2.Endpoint()) {
			t.Errorf("error %q does not say the host cannot be reached", r.err)
		}
		if took > 4*time.Second {
			t.Errorf("connect took %s with timeout=2s", took)
		}
		if c := r.recap()[h2.Name]; c.Unreachable != 1 || c.Failed != 0 {
			t.Errorf("recap %+v, want unreachable=1", c)
		}
	})

	t.Run("wrong user is failed, not unreachable", func(t *testing.T) {
		r := e.run(t, `def main(ctx): `+connectTo("H1", `, user = "nobody-here"`), false)
		if r.exit != engine.ExitTargetFail {
			t.Fatalf("exit %d, want 2: %v", r.exit, r.err)
		}
		if want := `refused the key`; !strings.Contains(r.err.Error(), want) || !strings.Contains(r.err.Error(), `for user "nobody-here"`) {
			t.Errorf("error %q", r.err)
		}
		if c := r.recap()[h1.Name]; c.Failed != 1 || c.Unreachable != 0 {
			t.Errorf("recap %+v, want failed=1", c)
		}
	})

	t.Run("key not authorised", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other_key")
		writeIdentity(t, other)
		saved := e.cfg
		defer func() { e.cfg = saved }()
		e.cfg.Identity = other
		r := e.run(t, `def main(ctx): `+connectTo("H1", ""), false)
		if r.err == nil || !strings.Contains(r.err.Error(), "refused the key") || !strings.Contains(r.err.Error(), other) {
			t.Errorf("error %v, want the refused key named with its file", r.err)
		}
	})

	t.Run("connection lost mid-run", func(t *testing.T) {
		if err := h2.Heal(); err != nil {
			hoststest.Unavailable(t, "healing a partition: %v", err)
		}
		start := time.Now()
		r := e.run(t, `
def main(ctx):
    h = `+connectTo("H2", "")+`
    h.run("true")
    local.run(["ip", "link", "set", "`+h2.Link+`", "down"])
    h.run("true")
`, false)
		h2.Heal()
		if r.exit != engine.ExitTargetFail {
			t.Fatalf("exit %d, want 2: %v", r.exit, r.err)
		}
		if !strings.Contains(r.err.Error(), "connection to root@"+h2.Endpoint()+" lost") {
			t.Errorf("error %q", r.err)
		}
		if c := r.recap()[h2.Name]; c.Unreachable != 1 {
			t.Errorf("recap %+v, want unreachable=1", c)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %s to notice (keepalive 1s)", took)
		}
	})
}

func TestIdentityMissing(t *testing.T) {
	home := t.TempDir()
	e := &testEnv{home: home, env: map[string]string{}}
	e.cfg.Home, e.cfg.Identity = home, filepath.Join(home, "id_ed25519")
	e.cfg.Getenv = func(k string) string { return e.env[k] }
	dir := t.TempDir()
	file := filepath.Join(dir, "p.star")
	os.WriteFile(file, []byte(`def main(ctx): ssh.connect("127.0.0.1", port = 9, host_key = "SHA256:`+strings.Repeat("A", 43)+`")`), 0o644)
	var stderr bytes.Buffer
	res := engine.Run(context.Background(), engine.Options{Playbook: file, Root: dir, Config: e.cfg, Stderr: &stderr})
	if res.Err == nil {
		t.Fatal("connect succeeded without an identity")
	}
	for _, want := range []string{e.cfg.Identity + " does not exist", "`mno init` creates it"} {
		if !strings.Contains(res.Err.Error(), want) {
			t.Errorf("error %q lacks %q", res.Err, want)
		}
	}
}

func TestSharedConnection(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	before := accepted(t, h)
	r := e.run(t, `
def one(i):
    h = `+connectTo("H1", "")+`
    return h.run("echo %d" % i).stdout
def main(ctx):
    for r in parallel(one, range(12), limit = 12):
        if not r.ok:
            fail(r.error)
`, false)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v", r.exit, r.err)
	}
	if n := accepted(t, h) - before; n != 1 {
		t.Errorf("12 concurrent connects made %d SSH logins, want 1", n)
	}
}

// accepted counts the logins in the host's sshd log.
func accepted(t *testing.T, h *hosts.Host) int {
	data, err := os.ReadFile(filepath.Join(h.Dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "Accepted publickey")
}

func TestCommandTimeoutKillsRemote(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	for _, sudo := range []string{"False", "True"} {
		t.Run("sudo="+sudo, func(t *testing.T) {
			start := time.Now()
			r := e.run(t, `
def main(ctx):
    h = `+connectTo("H1", `, user = "mno"`)+`
    h.run("echo $$ > /tmp/t.pid; sleep 300 & echo $! > /tmp/t.child; wait", timeout = "1s", sudo = `+sudo+`)
`, false)
			if r.exit != engine.ExitTargetFail || !strings.Contains(r.err.Error(), "timed out after 1s") {
				t.Fatalf("exit %d, error %v; want a timeout", r.exit, r.err)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("a 1s timeout took %s", took)
			}
			for _, f := range []string{"/tmp/t.pid", "/tmp/t.child"} {
				data, err := h.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
				if err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(5 * time.Second)
				for alive(pid) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if alive(pid) {
					t.Errorf("remote process %d (%s) still runs after the timeout", pid, f)
				}
			}
		})
	}
}

// alive reports whether pid runs (the lab shares this machine's PIDs).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// TestSecretsNeverInArgv scans every /proc/*/cmdline of this machine (the
// hosts share its PIDs) while commands that hold secrets run.
func TestSecretsNeverInArgv(t *testing.T) {
	e := newEnv(t, 1)
	const tok, in = "tok-9f3a71c2e5", "stdin-secret-77d1"
	for _, sudo := range []string{"False", "True"} {
		t.Run("sudo="+sudo, func(t *testing.T) {
			var stop atomic.Bool
			var scans, sawSleep atomic.Int64
			var leaks sync.Map
			var wg sync.WaitGroup
			wg.Go(func() {
				for !stop.Load() {
					scans.Add(1)
					ents, _ := os.ReadDir("/proc")
					for _, ent := range ents {
						if ent.Name()[0] < '0' || ent.Name()[0] > '9' {
							continue
						}
						cmd, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
						if bytes.Contains(cmd, []byte("sleep\x000.7")) {
							sawSleep.Add(1)
						}
						for _, s := range secretForms(tok, in) {
							if bytes.Contains(cmd, []byte(s)) {
								leaks.Store(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})), true)
							}
						}
					}
				}
			})
			r := e.run(t, `
def main(ctx):
    h = `+connectTo("H1", `, user = "mno"`)+`
    for i in range(3):
        r = h.run("sleep 0.7; cat; echo \"[$TOKEN]\"", sudo = `+sudo+`, stdin = secret("`+in+`"), env = {"TOKEN": secret("`+tok+`"), "PLAIN": "p"})
        if r.stdout != "`+in+`[`+tok+`]\n":
            fail("bad output")
`, false)
			stop.Store(true)
			wg.Wait()
			if r.exit != 0 {
				t.Fatalf("exit %d: %v\n%s", r.exit, r.err, r.stderr)
			}
			if sawSleep.Load() == 0 {
				t.Fatalf("the scan (%d rounds) never saw the remote command run", scans.Load())
			}
			leaks.Range(func(k, _ any) bool {
				t.Errorf("secret in a command line: %s", k)
				return true
			})
			for _, ev := range r.events {
				if strings.Contains(fmt.Sprint(ev), tok) || strings.Contains(fmt.Sprint(ev), in) {
					t.Errorf("secret in a journal event: %+v", ev)
				}
			}
		})
	}
}

func secretForms(vals ...string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, v, b64(v))
	}
	return out
}

func TestPutLarge(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	for _, sudo := range []string{"False", "True"} {
		t.Run("sudo="+sudo, func(t *testing.T) {
			r := e.run(t, `
def main(ctx):
    h = `+connectTo("H1", `, user = "mno"`)+`
    big = "0123456789abcdefgh\x00\x7f" * 2500000 + "tail"
    if not h.put("/home/mno/big.bin", big, sudo = `+sudo+`):
        fail("first put did not change")
    if h.put("/home/mno/big.bin", big, sudo = `+sudo+`):
        fail("second put changed")
    if h.put("/home/mno/big.bin", big[:-4] + "TAIL", sudo = `+sudo+`) != True:
        fail("same-size change not seen")
    if h.get("/home/mno/big.bin", sudo = `+sudo+`) != big[:-4] + "TAIL":
        fail("get differs")
`, false)
			if r.exit != 0 {
				t.Fatalf("exit %d: %v\n%s", r.exit, r.err, r.stderr)
			}
			data, err := h.ReadFile("/home/mno/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte("0123456789abcdefgh\x00\x7f"), 2500000)
			want = append(want, "TAIL"...)
			if len(data) != 50_000_004 || sha256.Sum256(data) != sha256.Sum256(want) {
				t.Errorf("host has %d bytes, want the 50 MB written", len(data))
			}
		})
	}
}

// TestPutCutConnection cuts the host off while a large put is in flight:
// the put fails as unreachable and the target is the old file or the new
// one, never a partial one.
func TestPutCutConnection(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	if h.Link == "" {
		hoststest.Unavailable(t, "partitions need network namespaces")
	}
	old := bytes.Repeat([]byte("old\n"), 1000)
	newSize := 40 << 20
	for _, sudo := range []string{"False", "True"} {
		t.Run("sudo="+sudo, func(t *testing.T) {
			target := "/srv/cut/big.dat"
			if sudo == "True" {
				target = "/etc/cut-big.dat"
			}
			setup := e.run(t, `
def main(ctx):
    h = `+connectTo("H1", "")+`
    h.mkdir("`+filepath.Dir(target)+`")
    h.put("`+target+`", "`+strings.Repeat(`old\n`, 1000)+`")
`, false)
			if setup.exit != 0 {
				t.Fatalf("setup: %v", setup.err)
			}
			// Slow the link to the host (80 Mbit/s) so that the put is in
			// flight for seconds.
			tc(t, "qdisc", "add", "dev", h.Link, "root", "tbf", "rate", "80mbit", "burst", "256kb", "latency", "100ms")
			defer tc(t, "qdisc", "del", "dev", h.Link, "root")
			done := make(chan runResult, 1)
			user := "" // root writes over SFTP
			if sudo == "True" {
				user = `, user = "mno"`
			}
			go func() {
				done <- e.run(t, `
def main(ctx):
    h = `+connectTo("H1", user)+`
    h.put("`+target+`", "n" * `+strconv.Itoa(newSize)+`, sudo = `+sudo+`)
`, false)
			}()
			// Cut the host off once a few MB of the temporary file arrived.
			stage := "/srv/.mno-staging"
			if sudo == "True" {
				stage = "/etc/.mno-staging" // "/" is not /etc's filesystem in the lab
			}
			waitForStaging(t, h, stage, 4<<20)
			if err := h.Partition(); err != nil {
				t.Fatal(err)
			}
			var r runResult
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				h.Heal()
				t.Fatal("the put did not fail within 30s of the partition")
			}
			if err := h.Heal(); err != nil {
				t.Fatal(err)
			}
			if r.exit != engine.ExitTargetFail || !strings.Contains(r.err.Error(), "lost") {
				t.Fatalf("exit %d, error %v; want the connection lost", r.exit, r.err)
			}
			if c := r.recap()[h.Name]; c.Unreachable != 1 {
				t.Errorf("recap %+v, want unreachable=1", c)
			}
			// Give the host's side time to notice and clean up, then look.
			time.Sleep(500 * time.Millisecond)
			data, err := h.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case bytes.Equal(data, old):
				t.Logf("the target is the old file")
			case len(data) == newSize && bytes.Count(data, []byte("n")) == newSize:
				t.Logf("the rename happened before the cut")
			default:
				t.Fatalf("target holds %d bytes: neither the old file nor the new one", len(data))
			}
		})
	}
}

// waitForStaging waits until a temporary file in the host's staging
// directory holds at least min bytes.
func waitForStaging(t *testing.T, h *hosts.Host, dir string, min int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := h.Command(context.Background(), false, "sh", "-c",
			`for f in `+dir+`/*.tmp; do [ -f "$f" ] && stat -c %s "$f"; done; true`).Output()
		for _, f := range strings.Fields(string(out)) {
			if n, _ := strconv.ParseInt(f, 10, 64); n >= min {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no temporary file of %d bytes appeared in %s", min, dir)
}

func tc(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
		t.Fatalf("tc %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func TestParallelOneUnreachable(t *testing.T) {
	e := newEnv(t, 20)
	bad := e.lab.Hosts()[6]
	if err := bad.Partition(); err != nil {
		hoststest.Unavailable(t, "partitions: %v", err)
	}
	r := e.run(t, `
def one(h):
    c = ssh.connect(h.address, port = h.port, host_key = h.host_key, name = h.name, timeout = "3s")
    c.run("echo ok")
    return c.put("/srv/sync.conf", "synced\n")
def main(ctx):
    rs = parallel(one, HOSTS, limit = 20)
    print(len([r for r in rs if r.ok]), "ok")
    for r in rs:
        if not r.ok:
            print(r.error)
`, false)
	if r.exit != engine.ExitTargetFail {
		t.Fatalf("exit %d, want 2: %v\n%s", r.exit, r.err, r.stderr)
	}
	counts := r.recap()
	for _, h := range e.lab.Hosts() {
		c := counts[h.Name]
		if h == bad {
			if c.Unreachable != 1 || c.OK != 0 {
				t.Errorf("%s: %+v, want unreachable=1", h.Name, c)
			}
			continue
		}
		if c.Failed+c.Unreachable != 0 || c.Changed != 2 {
			t.Errorf("%s: %+v, want run and put changed", h.Name, c)
		}
		if data, err := h.ReadFile("/srv/sync.conf"); err != nil || string(data) != "synced\n" {
			t.Errorf("%s: /srv/sync.conf = %q, %v", h.Name, data, err)
		}
	}
	var printed string
	for _, ev := range r.events {
		if ev.Type == "print" {
			printed += ev.Message + "\n"
		}
	}
	if !strings.Contains(printed, "19 ok") || !strings.Contains(printed, "cannot reach "+bad.Endpoint()) {
		t.Errorf("printed:\n%s", printed)
	}
}

// TestSecondPutChangesNothing: on 50 hosts, a second identical put reports
// changed=False everywhere and leaves every mtime as it was.
func TestSecondPutChangesNothing(t *testing.T) {
	e := newEnv(t, 50)
	src := `
def one(h):
    c = ssh.connect(h.address, port = h.port, host_key = h.host_key, name = h.name)
    c.mkdir("/srv/app")
    return c.put("/srv/app/routes.yml", "http:\n  routers: {}\n", mode = 0o640)
def main(ctx):
    for r in parallel(one, HOSTS, limit = 50):
        if not r.ok:
            fail(r.error)
`
	first := e.run(t, src, false)
	if first.exit != 0 {
		t.Fatalf("first run: exit %d: %v", first.exit, first.err)
	}
	mtimes := map[string]time.Time{}
	for _, h := range e.lab.Hosts() {
		fi, err := h.Stat("/srv/app/routes.yml")
		if err != nil {
			t.Fatal(err)
		}
		mtimes[h.Name] = fi.ModTime()
	}
	time.Sleep(20 * time.Millisecond)
	second := e.run(t, src, false)
	if second.exit != 0 {
		t.Fatalf("second run: exit %d: %v", second.exit, second.err)
	}
	puts := second.effects("put")
	if len(puts) != 50 {
		t.Fatalf("%d put effects, want 50", len(puts))
	}
	for _, ev := range puts {
		if ev.Changed == nil || *ev.Changed {
			t.Errorf("%s: second put changed", ev.Target)
		}
	}
	for _, h := range e.lab.Hosts() {
		fi, err := h.Stat("/srv/app/routes.yml")
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(mtimes[h.Name]) {
			t.Errorf("%s: mtime %v → %v", h.Name, mtimes[h.Name], fi.ModTime())
		}
	}
	if c := second.recap(); len(c) != 50 {
		t.Errorf("recap has %d targets", len(c))
	}
}

func TestDryRunDiffs(t *testing.T) {
	e := newEnv(t, 1)
	h := e.lab.Hosts()[0]
	setup := e.run(t, `
def main(ctx):
    h = `+connectTo("H1", "")+`
    h.mkdir("/srv/conf")
    h.put("/srv/conf/app.yml", "a: 1\nb: 2\nc: 3\n")
    h.put("/srv/conf/token", secret("old-token-123"), mode = 0o600)
    h.put("/srv/conf/gone.txt", "bye\n")
`, false)
	if setup.exit != 0 {
		t.Fatal(setup.err)
	}
	before := map[string][]byte{}
	for _, f := range []string{"/srv/conf/app.yml", "/srv/conf/token", "/srv/conf/gone.txt"} {
		before[f], _ = h.ReadFile(f)
	}
	r := e.run(t, `
def main(ctx):
    h = `+connectTo("H1", "")+`
    h.put("/srv/conf/app.yml", "a: 1\nb: 20\nc: 3\n")
    h.put("/srv/conf/token", secret("new-token-456"), mode = 0o600)
    h.edit("/srv/conf/app.yml", lambda old: old + "d: 4\n")
    h.remove("/srv/conf/gone.txt")
    h.put("/srv/conf/new.txt", "fresh\n")
`, true)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v", r.exit, r.err)
	}
	want := map[string]string{
		"put /srv/conf/app.yml":     "--- /srv/conf/app.yml\n+++ /srv/conf/app.yml\n@@ -1,3 +1,3 @@\n a: 1\n-b: 2\n+b: 20\n c: 3\n",
		"edit /srv/conf/app.yml":    "--- /srv/conf/app.yml\n+++ /srv/conf/app.yml\n@@ -1,3 +1,4 @@\n a: 1\n b: 2\n c: 3\n+d: 4\n",
		"remove /srv/conf/gone.txt": "--- /srv/conf/gone.txt\n+++ /srv/conf/gone.txt\n@@ -1 +0,0 @@\n-bye\n",
		"put /srv/conf/new.txt":     "--- /srv/conf/new.txt\n+++ /srv/conf/new.txt\n@@ -0,0 +1 @@\n+fresh\n",
	}
	seen := 0
	for _, ev := range r.events {
		if ev.Type != "effect_end" || ev.Kind == "connect" {
			continue
		}
		if !ev.Simulated || ev.Changed == nil || !*ev.Changed {
			t.Errorf("%s %s: simulated=%v changed=%v, want a simulated change", ev.Kind, ev.Pos, ev.Simulated, ev.Changed)
		}
		if strings.Contains(ev.Diff, "token-") {
			t.Errorf("secret in a diff: %q", ev.Diff)
		}
		for k, d := range want {
			if strings.HasPrefix(k, ev.Kind+" ") && strings.Contains(ev.Diff, strings.TrimPrefix(k, ev.Kind+" ")) {
				seen++
				if ev.Diff != d {
					t.Errorf("%s diff:\n%s\nwant:\n%s", k, ev.Diff, d)
				}
			}
		}
		if ev.Kind == "put" && strings.Contains(ev.Diff, "/srv/conf/token") && !strings.Contains(ev.Diff, "secret content <redacted>") {
			t.Errorf("secret put diff %q does not say the secret changes", ev.Diff)
		}
	}
	if seen != len(want) {
		t.Errorf("saw %d of %d expected diffs", seen, len(want))
	}
	if strings.Contains(r.stderr, "token-") {
		t.Errorf("secret in the report:\n%s", r.stderr)
	}
	for f, b := range before {
		if now, _ := h.ReadFile(f); !bytes.Equal(now, b) {
			t.Errorf("dry run changed %s", f)
		}
	}
	if _, err := h.Stat("/srv/conf/new.txt"); err == nil {
		t.Errorf("dry run created a file")
	}
}

// TestAgentIdentity: with SSH_AUTH_SOCK set, the agent's keys authenticate
// even when the identity file is missing.
func TestAgentIdentity(t *testing.T) {
	e := newEnv(t, 1)
	data, err := os.ReadFile(e.cfg.Identity)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := xssh.ParseRawPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.cfg.Identity); err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go agent.ServeAgent(kr, c)
		}
	}()
	r := e.run(t, `def main(ctx): `+connectTo("H1", "")+`.run("true")`, false)
	if r.exit == 0 {
		t.Fatal("connected without identity file nor agent")
	}
	e.env["SSH_AUTH_SOCK"] = sock
	r = e.run(t, `def main(ctx): `+connectTo("H1", "")+`.run("true")`, false)
	if r.exit != 0 {
		t.Fatalf("exit %d: %v", r.exit, r.err)
	}
}
