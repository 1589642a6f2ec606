// Package bench holds benchmarks against real hosts (`make bench`); they are
// not timed tests and not part of CI.
package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// syncPlaybook is one "sync" step per host, in parallel: connect, run a
// command, put a 30-line file whose content changes every run (so the put
// really writes).
const syncPlaybook = `
def sync(h, content):
    c = ssh.connect(h.address, port = h.port, host_key = h.host_key, name = h.name)
    c.run("true")
    c.put("/srv/routes.yml", content)

def main(ctx, i = "0"):
    content = "".join(["route-%d: service-%d.example.com # run %s\n" % (n, n, i) for n in range(30)])
    for r in parallel(lambda h: sync(h, content), HOSTS, limit = len(HOSTS)):
        if not r.ok:
            fail(r.error)
`

// benchLab starts n hosts that authorise a fresh control plane identity.
func benchLab(b *testing.B, n int) (*hosts.Lab, runctx.Config, xssh.Signer) {
	b.Helper()
	home := b.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "mno-bench")
	if err != nil {
		b.Fatal(err)
	}
	id := filepath.Join(home, "id_ed25519")
	if err := os.WriteFile(id, pem.EncodeToMemory(block), 0o600); err != nil {
		b.Fatal(err)
	}
	signer, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	line := strings.TrimSpace(string(xssh.MarshalAuthorizedKey(signer.PublicKey())))
	lab := hoststest.Start(b, n, hosts.AuthorizedKeys(line))
	return lab, runctx.Config{Home: home, Identity: id, Getenv: func(string) string { return "" }}, signer
}

func hostsGlobal(lab *hosts.Lab) starlark.StringDict {
	var list []starlark.Value
	for _, h := range lab.Hosts() {
		list = append(list, starlarkstruct.FromStringDict(starlark.String("labhost"), starlark.StringDict{
			"name": starlark.String(h.Name), "address": starlark.String(h.Addr),
			"port": starlark.MakeInt(h.Port), "host_key": starlark.String(h.HostKey),
		}))
	}
	return starlark.StringDict{"HOSTS": starlark.NewList(list)}
}

// BenchmarkSSHSync runs the sync playbook through engine.Run, as `mno run`
// does, on N real sshd hosts: one op is one whole run (new connections,
// command, put) across all N.
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/
func BenchmarkSSHSync(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			lab, cfg, _ := benchLab(b, n)
			dir := b.TempDir()
			file := filepath.Join(dir, "sync.star")
			if err := os.WriteFile(file, []byte(syncPlaybook), 0o644); err != nil {
				b.Fatal(err)
			}
			globals := hostsGlobal(lab)
			i := 0
			for b.Loop() {
				i++
				var stderr bytes.Buffer
				res := engine.Run(context.Background(), engine.Options{
					Playbook: file, Root: dir, Params: []string{"i=" + strconv.Itoa(i)}, Embedded: mno.Files,
					Config: cfg, Globals: globals, Stderr: &stderr,
				})
				if res.Exit != 0 {
					b.Fatalf("exit %d: %v\n%s", res.Exit, res.Err, stderr.String())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/float64(n), "ms/host")
		})
	}
}

// BenchmarkSSHFloor does the same SSH/SFTP work with x/crypto/ssh and
// pkg/sftp directly (no engine, no journal, no host key file, no checks):
// the floor BenchmarkSSHSync is compared with.
func BenchmarkSSHFloor(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			lab, _, signer := benchLab(b, n)
			i := 0
			for b.Loop() {
				i++
				content := []byte(strings.Repeat(fmt.Sprintf("route: service.example.com # run %d\n", i), 30))
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for _, h := range lab.Hosts() {
					wg.Go(func() { errs <- floorSync(h, signer, content) })
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/float64(n), "ms/host")
		})
	}
}

func floorSync(h *hosts.Host, signer xssh.Signer, content []byte) error {
	cfg := h.ClientConfig("root", signer)
	cfg.Timeout = 10 * time.Second
	c, err := xssh.Dial("tcp", h.Endpoint(), cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	err = s.Run("true")
	s.Close()
	if err != nil {
		return err
	}
	cl, err := sftp.NewClient(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	f, err := cl.OpenFile("/srv/.routes.tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return cl.PosixRename("/srv/.routes.tmp", "/srv/routes.yml")
}
