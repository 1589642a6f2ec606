package kube_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/builtins/kube"
	"github.com/mno-sh/mno/engine/enginetest"
	"github.com/mno-sh/mno/engine/runctx"
)

// TestProcesses runs the real mno binary, built once for its subtests.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/mno")
	}
	bin := filepath.Join(t.TempDir(), "mno")
	build := exec.Command("go", "build", "-o", bin, "github.com/mno-sh/mno/cmd/mno")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/mno: %v\n%s", err, out)
	}

	// Two runs each increment one counter key 20 times at the same time:
	// every increment survives, through conflicts and retries.
	t.Run("concurrent-increments", func(t *testing.T) {
		e := newEnv(t)
		playbook := scriptFile(t, "count.star", `
def main(ctx, ns, runs, times = "20"):
    def inc(d):
        d["counter"] = str(int(d.get("counter", "0")) + 1)

    # A barrier, so that the runs really overlap.
    kube.configmap.update("barrier", inc, namespace = ns)
    for i in range(100000):
        if kube.configmap.get("barrier", namespace = ns)["counter"] == runs:
            break
    for i in range(int(times)):
        kube.configmap.update("counter", inc, namespace = ns)
`)
		const runs = 2
		type result struct {
			stderr string
			err    error
		}
		results := make([]result, runs)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var stderr bytes.Buffer
				cmd := exec.Command(bin, "run", playbook, "ns="+e.ns, "runs="+strconv.Itoa(runs), "--kubeconfig", e.srv.Kubeconfig)
				cmd.Stderr = &stderr
				err := cmd.Run()
				results[i] = result{stderr.String(), err}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		conflicts := 0
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("run %d: %v\n%s", i, r.err, r.stderr)
			}
			for _, m := range regexp.MustCompile(`(\d+) conflicts retried`).FindAllStringSubmatch(r.stderr, -1) {
				n, _ := strconv.Atoi(m[1])
				conflicts += n
			}
		}
		if got := e.cm("counter").Data["counter"]; got != "40" {
			t.Fatalf("counter = %q after 2×20 concurrent increments, want 40", got)
		}
		t.Logf("2×20 concurrent increments in %s (both processes, including start-up), %d conflicts retried", elapsed.Round(time.Millisecond), conflicts)
	})

	// A kubeconfig naming a closed port: one clear line naming the server,
	// exit 1, no Go stack, no long wait.
	t.Run("unreachable", func(t *testing.T) {
		port := closedPort(t)
		server := fmt.Sprintf("https://127.0.0.1:%d", port)
		cfg := filepath.Join(t.TempDir(), "kubeconfig")
		writeKubeconfig(t, cfg, server)
		playbook := scriptFile(t, "get.star", "def main(ctx):\n    kube.configmap.get(\"cluster-info\")\n")
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "run", playbook, "--kubeconfig", cfg)
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		elapsed := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
		}
		out := stderr.String()
		for _, s := range []string{"get.star:2:", "cannot reach the Kubernetes API server " + server, "connection refused", cfg} {
			if !strings.Contains(out, s) {
				t.Errorf("stderr does not contain %q:\n%s", s, out)
			}
		}
		if strings.Contains(out, "goroutine ") || strings.Contains(out, ".go:") {
			t.Errorf("stderr shows Go internals:\n%s", out)
		}
		if elapsed > 5*time.Second {
			t.Errorf("took %s to report an unreachable server", elapsed)
		}
		t.Logf("unreachable reported in %s:\n%s", elapsed.Round(time.Millisecond), out)
	})

	// Nothing to connect to: the error lists every place tried.
	t.Run("no-configuration", func(t *testing.T) {
		if _, err := os.Stat(kube.K3sKubeconfig); err == nil {
			t.Skipf("%s exists on this machine", kube.K3sKubeconfig)
		}
		home := t.TempDir()
		playbook := scriptFile(t, "get.star", "def main(ctx):\n    kube.configmap.get(\"cluster-info\")\n")
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "run", playbook)
		cmd.Env = []string{"HOME=" + home, "KUBECONFIG=/nonexistent/a:/nonexistent/b", "PATH=" + os.Getenv("PATH")}
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
		}
		for _, s := range []string{
			"no Kubernetes configuration found; tried:",
			"$KUBECONFIG (/nonexistent/a: not found, /nonexistent/b: not found)",
			filepath.Join(home, ".kube", "config") + ": not found",
			kube.K3sKubeconfig + ": not found",
			"in-cluster service account: not running in a pod ($KUBERNETES_SERVICE_HOST is unset)",
			"set --kubeconfig or $KUBECONFIG",
		} {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("stderr does not contain %q:\n%s", s, stderr.String())
			}
		}
	})
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func writeKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: not-a-real-token
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestForbidden: RBAC refusals name the verb, the resource, the object and
// the namespace.
func TestForbidden(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCM(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info"}, Data: map[string]string{"cluster-name": "mynodeone"}})
	nobody, err := e.srv.UserKubeconfig("nobody")
	if err != nil {
		t.Fatal(err)
	}
	reader, err := e.srv.UserKubeconfig("reader", "configmap-readers")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
	}
	if _, err := e.client.RbacV1().Roles(e.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RbacV1().RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-readers"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "configmap-readers"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, kubeconfig, src string
		want                  []string
	}{
		{"get", nobody, `kube.configmap.get("cluster-info", namespace = ns)`, []string{
			`forbidden to get configmap "cluster-info" in namespace "NS" (RBAC)`,
			`User "nobody" cannot get resource "configmaps" in API group "" in the namespace "NS"`}},
		{"update", reader, `kube.configmap.update("cluster-info", lambda d: d | {"x": "1"}, namespace = ns)`, []string{
			`forbidden to update configmap "cluster-info" in namespace "NS" (RBAC)`,
			`User "reader" cannot update resource "configmaps"`}},
		{"lock", reader, `kube.lock("cp", namespace = ns)`, []string{
			`forbidden to get lease "cp" in namespace "NS" (RBAC)`}},
		{"node", reader, `kube.node.get("w1")`, []string{
			`forbidden to get node "w1" (RBAC)`,
			`cannot get resource "nodes" in API group "" at the cluster scope`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := e.options()
			o.Config = runctx.Config{Kubeconfig: tt.kubeconfig}
			_, err := enginetest.Run(t, scriptFile(t, "f.star", tt.src), tt.src, false, o)
			if err == nil {
				t.Fatal("succeeded")
			}
			for _, s := range tt.want {
				if s = strings.ReplaceAll(s, "NS", e.ns); !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q:\n%v", s, err)
				}
			}
		})
	}
	if got := e.cm("cluster-info").Data; len(got) != 1 {
		t.Errorf("data changed to %v", got)
	}
}
