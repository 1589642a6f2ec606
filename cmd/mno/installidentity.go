package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno/builtins/kube"
	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/deploy/rbac"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/internal/kubeconfig"
)

// controllerLifetime is how long mno's own certificate is valid; `mno install systemd`
// issues a new one once two thirds of it have passed.
const controllerLifetime = 365 * 24 * time.Hour

// installIdentity gives mno its own identity in the cluster: it applies deploy/rbac's roles
// bound to the user mno:controller (as the admin cfg discovers, usually k3s.yaml), and writes
// $MNO_HOME/kubeconfig with a client certificate for that user, signed by the cluster's client
// CA, unless the one there is still good. It returns the kubeconfig's path.
func installIdentity(ctx context.Context, cfg runctx.Config, errOut io.Writer) (string, error) {
	admin, where, err := kubeconfig.RESTConfig(kubeconfig.Options{Kubeconfig: cfg.Kubeconfig, Context: cfg.KubeContext, Getenv: cfg.Getenv})
	if err != nil {
		return "", err
	}
	c, err := kclient.New(admin)
	if err != nil {
		return "", err
	}
	roles, err := rbac.Load()
	if err != nil {
		return "", err
	}
	changed, err := rbac.Apply(ctx, c, roles, rbac.UserSubject())
	if err != nil {
		return "", fmt.Errorf("apply mno's roles as the admin of %s: %w", where, err)
	}
	for _, ch := range changed {
		fmt.Fprintf(errOut, "applied %s\n", ch)
	}
	path := filepath.Join(cfg.Home, "kubeconfig")
	if keep, why := currentIdentity(path, time.Now()); keep {
		fmt.Fprintf(errOut, "%s: %s\n", path, why)
		return path, nil
	}
	cred, err := kube.IssueCredential(kube.CredentialRequest{User: rbac.User, Lifetime: controllerLifetime, Server: admin.Host, TLSDir: tlsDir(cfg)}, time.Now())
	if err != nil {
		return "", fmt.Errorf("issue mno's certificate: %w", err)
	}
	if err := writeIdentity(cfg.Home, cred); err != nil {
		return "", err
	}
	fmt.Fprintf(errOut, "wrote %s (user %s, valid until %s)\n", path, cred.User, cred.NotAfter.Format(time.RFC3339))
	return path, checkIdentity(ctx, path)
}

// currentIdentity says whether the kubeconfig at path holds mno:controller's certificate
// and it is not yet two thirds through its lifetime.
func currentIdentity(path string, now time.Time) (bool, string) {
	cert := identityCert(path)
	if cert == nil {
		return false, ""
	}
	renew := renewAfter(cert)
	if now.Before(renew) {
		return true, fmt.Sprintf("certificate for %s valid until %s, kept (renewed after %s)", rbac.User,
			cert.NotAfter.UTC().Format(time.RFC3339), renew.UTC().Format(time.RFC3339))
	}
	return false, ""
}

// identityCert returns mno:controller's certificate in the kubeconfig at path (in the
// file it names, or inline as an earlier mno wrote it); nil when there is none.
func identityCert(path string) *x509.Certificate {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil
	}
	for _, u := range cfg.AuthInfos {
		data := u.ClientCertificateData
		if len(data) == 0 && u.ClientCertificate != "" {
			if data, err = os.ReadFile(u.ClientCertificate); err != nil {
				continue
			}
		}
		b, _ := pem.Decode(data)
		if b == nil {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err == nil && cert.Subject.CommonName == rbac.User {
			return cert
		}
	}
	return nil
}

// renewAfter is when two thirds of cert's lifetime have passed.
func renewAfter(cert *x509.Certificate) time.Time {
	return cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) * 2 / 3)
}

func tlsDir(cfg runctx.Config) string {
	if d := cfg.Getenv("MNO_K3S_TLS_DIR"); d != "" {
		return d
	}
	return kube.K3sTLSDir
}

// Files of mno's own identity in $MNO_HOME: the kubeconfig names the certificate and key
// files rather than holding them, so a long-running mno watch picks a renewed certificate
// up (client-go reloads client certificate files and closes connections made with the
// old one) without a restart.
const (
	identityCertFile = "mno-controller.crt"
	identityKeyFile  = "mno-controller.key"
)

// writeIdentity writes cred's key and certificate to $MNO_HOME (0600, each through a
// temporary file and a rename, the key first) and the kubeconfig naming them.
func writeIdentity(home string, cred *kube.Credential) error {
	kc, err := clientcmd.Load(cred.Kubeconfig)
	if err != nil {
		return err
	}
	auth, cluster := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo], kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(home, identityCertFile), filepath.Join(home, identityKeyFile)
	auth.ClientKey, auth.ClientCertificate = keyPath, certPath
	key, cert := auth.ClientKeyData, auth.ClientCertificateData
	auth.ClientKeyData, auth.ClientCertificateData = nil, nil
	cluster.LocationOfOrigin, auth.LocationOfOrigin = "", ""
	out, err := clientcmd.Write(*kc)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{keyPath, key}, {certPath, cert}, {filepath.Join(home, "kubeconfig"), out}} {
		if err := writeFileAtomic(f.path, f.data); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".mno-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// renewIdentity renews mno's own certificate when the run uses $MNO_HOME/kubeconfig
// (as the systemd units do: KUBECONFIG) and two thirds of its lifetime have passed, signed
// by the cluster's client CA on this machine; the units run as root, who can read it. When
// it cannot (no CA here, not root), it warns with the expiry and how to renew, and the run
// goes on with the certificate it has. It says whether it renewed.
func renewIdentity(cfg runctx.Config, now time.Time, errOut io.Writer) bool {
	path := filepath.Join(cfg.Home, "kubeconfig")
	if used := cfg.Kubeconfig; used != path && (used != "" || cfg.Getenv("KUBECONFIG") != path) {
		return false
	}
	cert := identityCert(path)
	if cert == nil || now.Before(renewAfter(cert)) {
		return false
	}
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return false
	}
	server := ""
	if ctx := kc.Contexts[kc.CurrentContext]; ctx != nil && kc.Clusters[ctx.Cluster] != nil {
		server = kc.Clusters[ctx.Cluster].Server
	}
	cred, err := kube.IssueCredential(kube.CredentialRequest{User: rbac.User, Lifetime: controllerLifetime, Server: server, TLSDir: tlsDir(cfg)}, now)
	if err == nil {
		err = writeIdentity(cfg.Home, cred)
	}
	if err != nil {
		fmt.Fprintf(errOut, "warning: mno's certificate in %s (user %s) expires at %s and could not be renewed here: %v; "+
			"run `mno install systemd` as root on the control plane\n", path, rbac.User, cert.NotAfter.UTC().Format(time.RFC3339), err)
		return false
	}
	fmt.Fprintf(errOut, "renewed mno's certificate in %s (user %s): valid until %s\n", path, cred.User, cred.NotAfter.Format(time.RFC3339))
	return true
}

// checkIdentity reads cluster-info with the new kubeconfig: it must not be refused. The
// binding was just written; the API server's authorizer sees it a moment later.
func checkIdentity(ctx context.Context, path string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return err
	}
	c, err := kclient.New(rc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = c.ConfigMaps(rbac.Namespace).Get(ctx, "cluster-info", metav1.GetOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s cannot read ConfigMap %s/cluster-info: %w", path, rbac.Namespace, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
