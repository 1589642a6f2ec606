package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
	"github.com/mno-sh/mno/lab/traefik/traefiktest"
)

// backendEnv makes the test binary an HTTP backend (run inside a VPS host).
const backendEnv = "MNO_E2E_BACKEND"

func TestMain(m *testing.M) {
	if addr := os.Getenv(backendEnv); addr != "" {
		serveBackend(addr)
		return
	}
	kubeapitest.Main(m)
}

func serveBackend(addr string) {
	http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s saw host %s\n", addr, r.Host)
	}))
}

// shims are the commands that cannot run here; tests assert their argv.
var shims = []string{"apt-get", "docker", "ufw", "systemctl", "tailscale", "curl"}

// env is one end-to-end setting: a control plane (this process: identity,
// kubeconfig), the real API server and real sshd hosts.
type env struct {
	t          *testing.T
	ctx        context.Context
	client     kubernetes.Interface
	kubeconfig string
	tlsDir     string // the API server's client CA, as k3s keeps it ($MNO_K3S_TLS_DIR)
	home       string
	identity   string
	pub        string
	lab        *hosts.Lab
	// watchEnv is added to the environment of the watchers startWatcher starts.
	watchEnv []string
}

// newEnv starts hosts with the given names and resets the cluster's state.
// The mno ConfigMaps live in kube-system by design, so e2e tests run one at
// a time and start from an empty kube-system.
func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	srv := kubeapitest.Server(t)
	e := &env{t: t, ctx: context.Background(), client: kubeapitest.Client(t, srv), kubeconfig: srv.Kubeconfig, tlsDir: srv.TLSDir()}
	e.home = t.TempDir()
	e.identity = filepath.Join(e.home, "id_ed25519")
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "mno@e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.identity, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pk)
	e.pub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	e.resetCluster()
	if len(names) > 0 {
		opts := []hosts.Option{hosts.Names(names...), hosts.AuthorizedKeys(e.pub), hosts.Shims(shims...)}
		if bin, err := os.Executable(); err == nil {
			opts = append(opts, hosts.Bind(filepath.Dir(bin)))
		}
		if tb := traefiktest.Binary(t); tb != "" {
			opts = append(opts, hosts.Bind(filepath.Dir(tb)))
		}
		e.lab = hoststest.Start(t, len(names), opts...)
		// Every node has tailscale and docker (shimmed); docker compose is present.
		for _, h := range e.lab.Hosts() {
			h.SetShim("tailscale ip -4", hosts.ShimResponse{Stdout: h.Addr + "\n"})
		}
	}
	return e
}

func (e *env) host(name string) *hosts.Host {
	h := e.lab.Host(name)
	if h == nil {
		e.t.Fatalf("no host %s", name)
	}
	return h
}

// resetCluster deletes the mno ConfigMaps, laptop bindings, Leases and Nodes left by an earlier test.
func (e *env) resetCluster() {
	for _, name := range []string{"sync-controller-registry", "service-registry", "domain-registry", "cluster-info"} {
		err := e.client.CoreV1().ConfigMaps("kube-system").Delete(e.ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			e.t.Fatal(err)
		}
	}
	// Laptop enrolments (issue 17).
	err := e.client.RbacV1().ClusterRoleBindings().DeleteCollection(e.ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: "mno.sh/credential=laptop"})
	if err != nil {
		e.t.Fatal(err)
	}
	nodes, _ := e.client.CoreV1().Nodes().List(e.ctx, metav1.ListOptions{})
	for _, n := range nodes.Items {
		e.client.CoreV1().Nodes().Delete(e.ctx, n.Name, metav1.DeleteOptions{})
	}
}

// result is what one playbook run produced.
type result struct {
	exit    int
	stdout  string // JSONL events
	stderr  string // the human report
	targets map[string]journal.Counts
	err     error
}

func (r result) changed() int {
	n := 0
	for _, c := range r.targets {
		n += c.Changed
	}
	return n
}

// run runs a playbook in-process the way `mno run --output json` does.
func (e *env) run(playbook string, params ...string) result {
	return e.runOpts(false, playbook, params...)
}

func (e *env) runOpts(dry bool, playbook string, params ...string) result {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	res := engine.Run(e.ctx, engine.Options{
		Playbook: playbook,
		Params:   params,
		DryRun:   dry,
		ShowDiff: true,
		JSON:     true,
		Timeout:  5 * time.Minute,
		Config: runctx.Config{
			Home:       e.home,
			Identity:   e.identity,
			Kubeconfig: e.kubeconfig,
			Getenv: func(k string) string {
				if k == "MNO_K3S_TLS_DIR" {
					return e.tlsDir
				}
				return ""
			},
		},
		Embedded: mno.Files,
		Stdout:   &stdout,
		Stderr:   &stderr,
	})
	e.t.Logf("mno run %s %s → exit %d\n%s", playbook, strings.Join(params, " "), res.Exit, stderr.String())
	return result{exit: res.Exit, stdout: stdout.String(), stderr: stderr.String(), targets: res.Targets, err: res.Err}
}

func (e *env) mustRun(playbook string, params ...string) result {
	e.t.Helper()
	r := e.run(playbook, params...)
	if r.exit != 0 {
		e.t.Fatalf("mno run %s: exit %d", playbook, r.exit)
	}
	return r
}

// configMap returns a ConfigMap's data (nil when missing).
func (e *env) configMap(name string) map[string]string {
	cm, err := e.client.CoreV1().ConfigMaps("kube-system").Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return cm.Data
}

// setConfigMap creates or replaces a ConfigMap's data.
func (e *env) setConfigMap(name string, data map[string]string) {
	e.t.Helper()
	cms := e.client.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{})
	} else if err == nil {
		cm.Data = data
		_, err = cms.Update(e.ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// setServices writes services.json.
func (e *env) setServices(services map[string]any) {
	e.t.Helper()
	b, _ := json.MarshalIndent(services, "", "  ")
	e.setConfigMap("service-registry", map[string]string{"services.json": string(b)})
}

// registry decodes registry.json.
func (e *env) registry() map[string]any {
	e.t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(e.configMap("sync-controller-registry")["registry.json"]), &doc); err != nil {
		e.t.Fatalf("registry.json is not valid JSON: %v", err)
	}
	return doc
}

// entry returns the registry entry of node name in list.
func (e *env) entry(list, name string) map[string]any {
	e.t.Helper()
	for _, x := range e.registry()[list].([]any) {
		m := x.(map[string]any)
		if m["name"] == name {
			return m
		}
	}
	e.t.Fatalf("node %s not in %s: %v", name, list, e.registry()[list])
	return nil
}

// initCluster creates the ConfigMaps as `mno init` does.
func (e *env) initCluster(cpAddress string) {
	e.t.Helper()
	e.mustRun("init", "cluster_name=home", "cluster_domain=home", "control_plane_ip="+cpAddress)
}

// mtimes returns the modification times of paths on h (missing: zero).
func mtimes(t *testing.T, h *hosts.Host, paths ...string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	for _, p := range paths {
		if fi, err := h.Stat(p); err == nil {
			m[p] = fi.ModTime()
		}
	}
	return m
}

// argvs returns the shim calls of h as shell-joined lines.
func argvs(t *testing.T, h *hosts.Host) []string {
	t.Helper()
	calls, err := h.ShimCalls()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range calls {
		out = append(out, strings.Join(c.Argv, " "))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, h *hosts.Host, path string) string {
	t.Helper()
	b, err := h.ReadFile(path)
	if err != nil {
		t.Fatalf("%s:%s: %v", h.Name, path, err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// shimScript is a curl stand-in whose output, piped to sh, runs script.
func shimScript(script string) hosts.ShimResponse {
	return hosts.ShimResponse{Stdout: script + "\n"}
}
