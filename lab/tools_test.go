package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
	"github.com/mno-sh/mno/lab/internal/proc"
	"github.com/mno-sh/mno/lab/internal/toolcache"
	"github.com/mno-sh/mno/lab/kubeapi"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
	"github.com/mno-sh/mno/lab/traefik"
	"github.com/mno-sh/mno/lab/traefik/traefiktest"
)

// fakeBuildTraefik is what the test binary does as the `mno lab
// build-traefik` that Up starts in the background: it builds a tiny program
// that execs a real Traefik ($MNO_LAB_TEST_TRAEFIK), through the real
// toolcache build queued behind the test's gate lock, instead of the
// 23-minute build of Traefik.
func fakeBuildTraefik(args []string) int {
	fs := flag.NewFlagSet("build-traefik", flag.ContinueOnError)
	cache := fs.String("cache", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := context.Background()
	src, err := os.MkdirTemp("", "fake-traefik-")
	if err != nil {
		return 1
	}
	defer os.RemoveAll(src)
	main := fmt.Sprintf("package main\n\nimport (\n\t\"os\"\n\t\"syscall\"\n)\n\nfunc main() {\n\tpanic(syscall.Exec(%q, append([]string{%q}, os.Args[1:]...), os.Environ()))\n}\n",
		os.Getenv("MNO_LAB_TEST_TRAEFIK"), "traefik")
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module mno.local/faketraefik\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(main), 0o644)
	err = toolcache.GoBuild(ctx, src, traefik.BinaryIn(*cache), os.Stderr, []string{"."},
		toolcache.Queue(filepath.Join(*cache, "src", traefik.Name()+".lock")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestBackgroundTraefik: a named lab with a VPS whose Traefik is not built
// comes up without waiting for it, its build running in the background
// (queued behind the build ahead of it); the VPS's docker stand-in, as
// add-vps runs it, fails at once with the time left when the build needs
// longer than it may wait, and otherwise waits with the build's progress and
// then starts the Traefik the build made.
func TestBackgroundTraefik(t *testing.T) {
	hoststest.Require(t)
	bins := kubeapitest.Binaries(t)
	real := traefiktest.Binary(t)
	if err := lab.CheckPrivileges(); err != nil {
		t.Skip(err)
	}
	exe, _ := os.Executable()
	cache := t.TempDir()
	want := kubeapi.BinariesIn(cache)
	for from, to := range map[string]string{bins.Etcd: want.Etcd, bins.APIServer: want.APIServer} {
		os.MkdirAll(filepath.Dir(to), 0o755)
		if err := os.Symlink(from, to); err != nil {
			t.Fatal(err)
		}
	}
	// The fake build's program execs the real Traefik, which the nodes see
	// only in the cache's bin directory (bound into them).
	inCache := filepath.Join(cache, "bin", "real-traefik")
	if err := os.Link(real, inCache); err != nil {
		data, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(inCache, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MNO_LAB_TEST_TRAEFIK", inCache)
	t.Setenv("MNO_CACHE", cache) // for lab.Builds
	// The build ahead: a held lock in the cache, and its status with an hour
	// left — as a cold kube-apiserver build would be.
	os.MkdirAll(filepath.Join(cache, "src"), 0o755)
	gate, err := os.OpenFile(filepath.Join(cache, "src", "ahead.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	if err := syscall.Flock(int(gate.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	self, _ := proc.RefOf(os.Getpid())
	ahead := toolcache.Status{Name: "ahead-v1", Builder: self, Phase: toolcache.PhaseCompiling, Started: time.Now(), Updated: time.Now(),
		Compiled: 10, Packages: 1000, Done: 1, Total: 100, Left: time.Hour}
	writeStatus(t, cache, ahead)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("bgtest-%d", os.Getpid()%100000)
	cl, err := lab.Up(ctx, lab.Options{Name: name, VPS: 1, Exe: exe, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if st, err := toolcache.ReadStatus(cache, traefik.Name()); err == nil {
			st.Builder.Kill()
		}
	})
	if !cl.TraefikBuilding || toolcache.Executable(cl.Traefik) == nil {
		t.Fatalf("the lab is up with TraefikBuilding %v and Traefik at %s: want it still building", cl.TraefikBuilding, cl.Traefik)
	}
	var bg toolcache.Status
	waitUntil(t, "the background build to queue", func() bool {
		bg, err = toolcache.ReadStatus(cache, traefik.Name())
		return err == nil && bg.Phase == toolcache.PhaseQueued
	})
	if !bg.Running() || bg.Builder.PID == os.Getpid() {
		t.Errorf("background build: %+v", bg)
	}
	if b := lab.Builds(); len(b) != 2 || !strings.Contains(strings.Join(b, "\n"), traefik.Name()+": 1 package to compile once the build ahead of it is done, about 1h left in all") {
		t.Errorf("lab.Builds() = %q", b)
	}

	setup := `apt-get install -y docker.io >/dev/null && mkdir -p /etc/traefik/dynamic /opt/mno/traefik &&
printf 'entryPoints:\n  web:\n    address: ":80"\nproviders:\n  file:\n    directory: /etc/traefik/dynamic\n' >/etc/traefik/traefik.yml &&
printf 'services:\n  traefik:\n    container_name: mno-traefik\n' >/opt/mno/traefik/compose.yaml`
	if out, code := exec(t, cl, "vps-1", setup); code != 0 {
		t.Fatalf("setup: exit %d: %s", code, out)
	}
	up := "docker compose -f /opt/mno/traefik/compose.yaml up -d"
	out, code := exec(t, cl, "vps-1", up)
	if code == 0 || !strings.Contains(out, traefik.Name()+" is still building in the background") || !strings.Contains(out, "about 1h left in all") ||
		!strings.Contains(out, "run the playbook again") {
		t.Fatalf("docker compose up while the build needs an hour: exit %d:\n%s", code, out)
	}

	// Now the build ahead is nearly done: up waits, then starts Traefik.
	ahead.Left = 20 * time.Second
	writeStatus(t, cache, ahead)
	waitUntil(t, "the queued build to see the new estimate", func() bool {
		st, err := toolcache.ReadStatus(cache, traefik.Name())
		return err == nil && st.Left > 0 && st.Left < time.Minute
	})
	var upOut syncBuffer
	upDone := make(chan int, 1)
	go func() {
		code, err := cl.Exec(ctx, "vps-1", nil, &upOut, &upOut, nil, "sh", "-c", up)
		if err != nil {
			t.Error(err)
		}
		upDone <- code
	}()
	waitUntil(t, "docker compose up to wait for the build", func() bool {
		return strings.Contains(upOut.String(), "waiting for "+traefik.Name()+": ")
	}, &upOut)
	ahead.Phase, ahead.Left = toolcache.PhaseBuilt, 0
	writeStatus(t, cache, ahead)
	syscall.Flock(int(gate.Fd()), syscall.LOCK_UN)
	select {
	case code := <-upDone:
		if code != 0 || !strings.Contains(upOut.String(), traefik.Name()+" is built (waited ") || !strings.Contains(upOut.String(), "Container mno-traefik  Started") {
			t.Fatalf("docker compose up: exit %d:\n%s", code, upOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("docker compose up did not return:\n%s", upOut.String())
	}
	if st, err := toolcache.ReadStatus(cache, traefik.Name()); err != nil || st.Phase != toolcache.PhaseBuilt {
		t.Errorf("background build after it finished: %+v, %v", st, err)
	}
	if out, _ := exec(t, cl, "vps-1", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:80/"); out != "404" {
		t.Errorf("Traefik in vps-1 answers %q on :80, want 404", out)
	}
}

func writeStatus(t *testing.T, cache string, s toolcache.Status) {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	p := toolcache.StatusPath(cache, s.Name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool, show ...fmt.Stringer) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			for _, s := range show {
				t.Log(s.String())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
