package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno/builtins/kube"
	"github.com/mno-sh/mno/deploy/rbac"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/lab/kubeapi"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

// TestIdentityRenewal: mno's own certificate lives in files its kubeconfig names (so a
// running client can reload them); a run using $MNO_HOME/kubeconfig renews it once two
// thirds of its lifetime have passed, and the renewed one is accepted by the real API
// server; a run with another kubeconfig, or one that cannot read the client CA, leaves
// the files alone (the latter warning with the expiry and the fix); `mno run` does it
// at its start.
func TestIdentityRenewal(t *testing.T) {
	ctx := context.Background()
	srv := startKubeAPI(t)
	home := filepath.Join(t.TempDir(), "mnohome")
	env := func(tls string) func(string) string {
		return func(k string) string {
			if k == "MNO_K3S_TLS_DIR" {
				return tls
			}
			return ""
		}
	}
	admin := runctx.Config{Home: home, Kubeconfig: srv.Kubeconfig, Getenv: env(srv.TLSDir())}
	var out bytes.Buffer
	path, err := installIdentity(ctx, admin, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	kc, _ := os.ReadFile(path)
	if strings.Contains(string(kc), "client-key-data") || !strings.Contains(string(kc), filepath.Join(home, identityKeyFile)) {
		t.Fatalf("the kubeconfig should name the key file, not hold the key:\n%s", kc)
	}
	for _, f := range []string{identityKeyFile, identityCertFile, "kubeconfig"} {
		if fi, err := os.Stat(filepath.Join(home, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v (want mode 0600)", f, err)
		}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info"}, Data: map[string]string{"cluster-name": "home"}}
	if _, err := clientFrom(t, srv.Kubeconfig).CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A certificate issued 300 days ago for a year: still valid, past its two thirds.
	backdate := func() string {
		t.Helper()
		cred, err := kube.IssueCredential(kube.CredentialRequest{User: rbac.User, Lifetime: controllerLifetime,
			Server: clientConfig(t, path).Host, TLSDir: srv.TLSDir()}, time.Now().Add(-300*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeIdentity(home, cred); err != nil {
			t.Fatal(err)
		}
		return identityCert(path).SerialNumber.String()
	}
	files := func() string {
		var b strings.Builder
		for _, f := range []string{identityKeyFile, identityCertFile, "kubeconfig"} {
			data, _ := os.ReadFile(filepath.Join(home, f))
			b.Write(data)
		}
		return b.String()
	}

	old := backdate()
	before := files()
	out.Reset()
	if renewIdentity(admin, time.Now(), &out) || files() != before {
		t.Fatalf("a run with the admin's kubeconfig renewed mno's certificate:\n%s", out.String())
	}

	own := runctx.Config{Home: home, Getenv: func(k string) string {
		if k == "KUBECONFIG" {
			return path
		}
		return env("")(k)
	}}
	out.Reset()
	if renewIdentity(own, time.Now(), &out) || files() != before {
		t.Fatalf("renewed without the client CA:\n%s", out.String())
	}
	for _, want := range []string{"warning: mno's certificate in " + path, "expires at", "could not be renewed here", "mno install systemd"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("warning lacks %q:\n%s", want, out.String())
		}
	}

	own.Getenv = func(k string) string {
		if k == "KUBECONFIG" {
			return path
		}
		return env(srv.TLSDir())(k)
	}
	out.Reset()
	if !renewIdentity(own, time.Now(), &out) {
		t.Fatalf("not renewed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "renewed mno's certificate in "+path) {
		t.Errorf("output: %s", out.String())
	}
	cert := identityCert(path)
	if cert == nil || cert.SerialNumber.String() == old || time.Since(cert.NotBefore) > time.Hour || !cert.NotAfter.After(time.Now().Add(300*24*time.Hour)) {
		t.Fatalf("renewed certificate: %+v", cert)
	}
	if _, err := clientFrom(t, path).CoreV1().ConfigMaps("kube-system").Get(ctx, "cluster-info", metav1.GetOptions{}); err != nil {
		t.Errorf("the renewed certificate is refused: %v", err)
	}
	renewed := files()
	out.Reset()
	if renewIdentity(own, time.Now(), &out) || files() != renewed || out.Len() != 0 {
		t.Errorf("a fresh certificate was renewed again:\n%s", out.String())
	}

	// mno run renews at its start.
	backdate()
	t.Setenv("MNO_HOME", home)
	t.Setenv("KUBECONFIG", path)
	t.Setenv("MNO_K3S_TLS_DIR", srv.TLSDir())
	var stdout, stderr bytes.Buffer
	if err := NewApp(strings.NewReader(""), &stdout, &stderr).Run([]string{"mno", "run", "hello"}); err != nil {
		t.Fatalf("mno run hello: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "renewed mno's certificate in "+path) || time.Since(identityCert(path).NotBefore) > time.Hour {
		t.Errorf("mno run did not renew:\n%s", stderr.String())
	}
}

// startKubeAPI starts a real kube-apiserver (and etcd) for one test.
func startKubeAPI(t *testing.T) *kubeapi.Server {
	t.Helper()
	srv, err := kubeapi.Start(context.Background(), kubeapi.Options{Dir: t.TempDir(), Binaries: kubeapitest.Binaries(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

func clientConfig(t *testing.T, path string) *rest.Config {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func clientFrom(t *testing.T, path string) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(clientConfig(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
