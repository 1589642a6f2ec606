package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/engine/runctx"
)

// TestSystemdUnits: the installed units point at the binary and MNO_HOME,
// are hardened, and pass systemd-analyze verify; installing again changes
// nothing.
func TestSystemdUnits(t *testing.T) {
	dir := t.TempDir()
	bin, _ := os.Executable()
	home := filepath.Join(t.TempDir(), "mnohome")
	changed, err := installUnits(dir, bin, home)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 3 {
		t.Fatalf("wrote %v, want 3 units", changed)
	}
	for _, n := range []string{"mno-sync.service", "mno-watch.service"} {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		text := string(b)
		for _, want := range []string{"ExecStart=" + bin + " ", "Environment=MNO_HOME=" + home, "Environment=KUBECONFIG=" + home + "/kubeconfig", "NoNewPrivileges=yes",
			"ProtectSystem=strict", "ReadWritePaths=" + home, "PrivateTmp=yes"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", n, want)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mno-sync.service")); !strings.Contains(string(b), bin+" run --timeout 30m sync") {
		t.Errorf("mno-sync.service does not run `mno run sync`")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mno-watch.service")); !strings.Contains(string(b), bin+" watch --resync 1h --debounce 2s --listen 127.0.0.1:9090 sync") {
		t.Errorf("mno-watch.service does not run `mno watch … sync`")
	}
	if changed, _ := installUnits(dir, bin, home); len(changed) != 0 {
		t.Errorf("second install changed %v", changed)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze missing (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "mno-sync.service"),
		filepath.Join(dir, "mno-sync.timer"), filepath.Join(dir, "mno-watch.service")).CombinedOutput()
	// verify exits 0 on unknown or unparsable settings but reports them.
	if err != nil || strings.Contains(string(out), "ignoring") || strings.Contains(string(out), "Unknown") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestInstallIdentity (issue 17): `mno install systemd` applies mno's roles bound to the
// user mno:controller (creating the run records' namespace mno-history with the Role there)
// and writes $MNO_HOME/kubeconfig (0600) with that user's certificate, which the real API
// server accepts for the four ConfigMaps and for records in mno-history (create, list,
// delete) and refuses for Secrets and for listing or deleting ConfigMaps of kube-system;
// installing again keeps the certificate.
func TestInstallIdentity(t *testing.T) {
	ctx := context.Background()
	srv := startKubeAPI(t)
	home := filepath.Join(t.TempDir(), "mnohome")
	cfg := runctx.Config{Home: home, Kubeconfig: srv.Kubeconfig, Getenv: func(k string) string {
		if k == "MNO_K3S_TLS_DIR" {
			return srv.TLSDir()
		}
		return ""
	}}
	var out strings.Builder
	path, err := installIdentity(ctx, cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || path != filepath.Join(home, "kubeconfig") {
		t.Fatalf("kubeconfig %s: %v", path, err)
	}
	for _, want := range []string{"applied Namespace mno-history", "applied Role mno-history/mno:controller",
		"applied RoleBinding mno-history/mno:controller", "applied ClusterRole mno:controller", "applied Role kube-system/mno:controller",
		"applied Role default/mno:controller", "applied ClusterRoleBinding mno:controller", "applied RoleBinding kube-system/mno:controller",
		"applied RoleBinding default/mno:controller", "wrote " + path + " (user mno:controller"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	cs := clientFrom(t, path)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info"}, Data: map[string]string{"cluster-name": "home"}}
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Errorf("mno cannot create cluster-info: %v", err)
	}
	if _, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("mno may list Secrets: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("mno may read a ConfigMap not its own: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("mno may list the ConfigMaps of kube-system: %v", err)
	}
	if err := cs.CoreV1().ConfigMaps("kube-system").Delete(ctx, "extension-apiserver-authentication", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("mno may delete a ConfigMap of kube-system not its own: %v", err)
	}
	// A record in mno-history: created, listed, deleted (the RoleBinding there may reach the
	// authorizer a moment after kube-system's, which installIdentity waited for).
	rec := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mno-run-20260101t000000-0a1b2c", Labels: map[string]string{"mno.sh/record": "run"}}}
	var recErr error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, recErr = cs.CoreV1().ConfigMaps("mno-history").Create(ctx, rec, metav1.CreateOptions{}); recErr == nil || !apierrors.IsForbidden(recErr) || time.Now().After(deadline) {
			break
		}
	}
	if recErr != nil {
		t.Errorf("mno cannot create a record in mno-history: %v", recErr)
	}
	if l, err := cs.CoreV1().ConfigMaps("mno-history").List(ctx, metav1.ListOptions{LabelSelector: "mno.sh/record=run"}); err != nil || len(l.Items) != 1 {
		t.Errorf("mno cannot list the records in mno-history: %v", err)
	}
	if err := cs.CoreV1().ConfigMaps("mno-history").Delete(ctx, rec.Name, metav1.DeleteOptions{}); err != nil {
		t.Errorf("mno cannot delete a record in mno-history: %v", err)
	}
	before, _ := os.ReadFile(path)
	out.Reset()
	if _, err := installIdentity(ctx, cfg, &out); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) || !strings.Contains(out.String(), "kept") || strings.Contains(out.String(), "applied") {
		t.Errorf("second install:\n%s", out.String())
	}
}
