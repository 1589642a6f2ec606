package ssh_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// testEnv is a lab of real sshd hosts and a control plane home (identity,
// known_hosts) whose key the hosts authorise.
type testEnv struct {
	lab  *hosts.Lab
	home string
	cfg  runctx.Config
	env  map[string]string
}

// newEnv generates a CP identity in a fresh $MNO_HOME and starts n hosts
// that authorise it. Keepalives run every second, so a cut connection is
// noticed in about 3 s.
func newEnv(t testing.TB, n int, opts ...hosts.Option) *testEnv {
	t.Helper()
	home := t.TempDir()
	line := writeIdentity(t, filepath.Join(home, "id_ed25519"))
	lab := hoststest.Start(t, n, append([]hosts.Option{hosts.AuthorizedKeys(line)}, opts...)...)
	e := &testEnv{lab: lab, home: home, env: map[string]string{"MNO_SSH_KEEPALIVE": "1s"}}
	e.cfg = runctx.Config{Home: home, Identity: filepath.Join(home, "id_ed25519"),
		Getenv: func(k string) string { return e.env[k] }}
	return e
}

// writeIdentity writes a fresh ed25519 key in OpenSSH format to file and
// returns its authorized_keys line.
func writeIdentity(t testing.TB, file string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "mno-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(xssh.MarshalAuthorizedKey(signer.PublicKey()))) + " mno-test"
}

// hostValue describes a lab host to scripts.
func hostValue(h *hosts.Host) starlark.Value {
	return starlarkstruct.FromStringDict(starlark.String("labhost"), starlark.StringDict{
		"name":        starlark.String(h.Name),
		"address":     starlark.String(h.Addr),
		"port":        starlark.MakeInt(h.Port),
		"host_key":    starlark.String(h.HostKey),
		"fingerprint": starlark.String(h.HostKeyFingerprint),
	})
}

// globals hands scripts the hosts: HOSTS (a list), H1 and H2.
func (e *testEnv) globals() starlark.StringDict {
	var list []starlark.Value
	for _, h := range e.lab.Hosts() {
		list = append(list, hostValue(h))
	}
	g := starlark.StringDict{"HOSTS": starlark.NewList(list), "H1": list[0]}
	if len(list) > 1 {
		g["H2"] = list[1]
	}
	return g
}

// runResult is what one engine.Run produced.
type runResult struct {
	exit   int
	err    error
	stderr string
	events []journal.Event
}

// run runs src as a playbook (it must define main(ctx)) with engine.Run and
// JSON events, as `mno run --output json` does.
func (e *testEnv) run(t testing.TB, src string, dry bool) runResult {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "playbook.star")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	res := engine.Run(context.Background(), engine.Options{
		Playbook: file, Root: dir, DryRun: dry, JSON: true, Embedded: mno.Files,
		Config: e.cfg, Globals: e.globals(), Stdout: &stdout, Stderr: &stderr,
	})
	rr := runResult{exit: res.Exit, err: res.Err, stderr: stderr.String()}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var ev journal.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("bad event %q: %v", line, err)
		}
		rr.events = append(rr.events, ev)
	}
	return rr
}

// effects returns the effect_end events of kind.
func (r runResult) effects(kind string) []journal.Event {
	var out []journal.Event
	for _, ev := range r.events {
		if ev.Type == "effect_end" && ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// recap returns the per-target counts of the run.
func (r runResult) recap() map[string]journal.Counts {
	for _, ev := range r.events {
		if ev.Type == "recap" {
			return ev.Targets
		}
	}
	return nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
