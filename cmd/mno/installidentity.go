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
	tls := cfg.Getenv("MNO_K3S_TLS_DIR")
	if tls == "" {
		tls = kube.K3sTLSDir
	}
	cred, err := kube.IssueCredential(kube.CredentialRequest{User: rbac.User, Lifetime: controllerLifetime, Server: admin.Host, TLSDir: tls}, time.Now())
	if err != nil {
		return "", fmt.Errorf("issue mno's certificate: %w", err)
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return "", err
	}
	tmp := path + ".mno-tmp"
	if err := os.WriteFile(tmp, cred.Kubeconfig, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", err
	}
	fmt.Fprintf(errOut, "wrote %s (user %s, valid until %s)\n", path, cred.User, cred.NotAfter.Format(time.RFC3339))
	return path, checkIdentity(ctx, path)
}

// currentIdentity says whether the kubeconfig at path holds mno:controller's certificate
// and it is not yet two thirds through its lifetime.
func currentIdentity(path string, now time.Time) (bool, string) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return false, ""
	}
	for _, u := range cfg.AuthInfos {
		b, _ := pem.Decode(u.ClientCertificateData)
		if b == nil {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil || cert.Subject.CommonName != rbac.User {
			continue
		}
		renew := cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) * 2 / 3)
		if now.Before(renew) {
			return true, fmt.Sprintf("certificate for %s valid until %s, kept (renewed after %s)", rbac.User,
				cert.NotAfter.UTC().Format(time.RFC3339), renew.UTC().Format(time.RFC3339))
		}
	}
	return false, ""
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
