// Package kubeapitest gives tests a real Kubernetes API server: one per test binary, started
// on first use, and a fresh namespace per test.
//
//	func TestMain(m *testing.M) { kubeapitest.Main(m) }
//
//	func TestThing(t *testing.T) {
//		srv := kubeapitest.Server(t)
//		ns := kubeapitest.Namespace(t, srv)
//		client := kubeapitest.Client(t, srv)
//		…
//	}
//
// When the binaries have not been built, tests are skipped, except under CI=true where a
// missing real part is a failure: run `make tools` (go run ./lab/cmd/buildtools) first.
package kubeapitest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/lab/kubeapi"
)

// StartTimeout bounds the start of the shared server; a warm start takes a few seconds.
const StartTimeout = 2 * time.Minute

// shared is the per-process server. Package state is the point here: every test in the binary
// must reach the same server, and only Main knows when the last one has finished.
var shared struct {
	mu      sync.Mutex
	running bool // inside Main
	srv     *kubeapi.Server
	dir     string
	err     error
}

// Main runs the package's tests, then stops the shared server and removes its directory. Call
// it from TestMain; it does not return.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.running = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "kubeapitest: stop:", err)
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// Server returns the test binary's API server, starting it on first use. It needs Main in
// TestMain, which stops it.
func Server(t testing.TB) *kubeapi.Server {
	t.Helper()
	bins := Binaries(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.running {
		t.Fatal("kubeapitest.Server: call kubeapitest.Main(m) from TestMain so the shared server is stopped")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.dir, shared.err = start(bins)
		if shared.err == nil {
			t.Logf("kubeapitest: API server %s (kubeconfig %s)", shared.srv.URL, shared.srv.Kubeconfig)
		}
	}
	if shared.err != nil {
		t.Fatal(shared.err) // every later test fails the same way, without retrying
	}
	return shared.srv
}

func start(bins kubeapi.Binaries) (*kubeapi.Server, string, error) {
	dir, err := os.MkdirTemp("", "mno-kubeapi-")
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	srv, err := kubeapi.Start(ctx, kubeapi.Options{Dir: dir, Binaries: bins})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return srv, dir, nil
}

// Binaries returns the cached kube-apiserver and etcd, or ends the test if they are missing:
// a skip locally, a failure under CI=true.
func Binaries(t testing.TB) kubeapi.Binaries {
	t.Helper()
	b, err := kubeapi.FindBinaries()
	if errors.Is(err, kubeapi.ErrNotBuilt) {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("real kube-apiserver missing: %v", err)
		}
		t.Skipf("real kube-apiserver missing: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Client returns an admin clientset for srv.
func Client(t testing.TB, srv *kubeapi.Server) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// KClient returns an admin client for srv as mno builds it (builtins/kube/kclient).
func KClient(t testing.TB, srv *kubeapi.Server) *kclient.Client {
	t.Helper()
	c, err := kclient.New(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Namespace creates a namespace named after the test, with a random suffix, and returns its
// name. It is not deleted: without a controller-manager a deleted namespace stays Terminating
// with its objects, so deleting would only pretend to clean up.
func Namespace(t testing.TB, srv *kubeapi.Server) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namePrefix(t.Name())}}
	ns, err := Client(t, srv).CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// namePrefix turns a test name into a DNS label prefix ending in "-", leaving room for the
// server's five-character suffix.
func namePrefix(test string) string {
	s := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(test), "-"), "-")
	if len(s) > 50 {
		s = strings.TrimRight(s[:50], "-")
	}
	if s == "" {
		s = "test"
	}
	return s + "-"
}
