package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// writeCA writes client-ca.{crt,key} and server-ca.crt, the CA valid until notAfter.
func writeCA(t *testing.T, dir string, notAfter time.Time) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{"client-ca.crt": cert, "server-ca.crt": cert,
		"client-ca.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIssueCredential: the certificate names the user (with its serial when asked) and
// groups, is a client certificate signed by the client CA for the lifetime asked (cut to the
// CA's expiry), renews after two thirds, and the kubeconfig holds a key that matches it.
func TestIssueCredential(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir, time.Now().AddDate(10, 0, 0))
	now := time.Now()
	c, err := IssueCredential(CredentialRequest{User: "mno:laptop:alice", SerialInUser: true, Groups: []string{"mno:laptops"},
		Lifetime: 90 * 24 * time.Hour, Server: "https://10.0.0.1:6443", TLSDir: dir}, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "mno:laptop:alice:"+c.Serial[:12] || len(c.Serial) != 32 {
		t.Errorf("user %q, serial %q", c.User, c.Serial)
	}
	cfg, err := clientcmd.Load(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://10.0.0.1:6443" {
		t.Errorf("server %q", rc.Host)
	}
	b, _ := pem.Decode(rc.CertData)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != c.User || strings.Join(cert.Subject.Organization, ",") != "mno:laptops" ||
		len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || cert.IsCA {
		t.Errorf("certificate %+v", cert.Subject)
	}
	if d := cert.NotAfter.Sub(now); d < 90*24*time.Hour-time.Second || d > 90*24*time.Hour {
		t.Errorf("valid for %s", d)
	}
	if d := c.RenewAfter.Sub(now); d < 60*24*time.Hour-time.Second || d > 60*24*time.Hour {
		t.Errorf("renews after %s, want 60 days", d)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "client-ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("not signed by the client CA: %v", err)
	}
	kb, _ := pem.Decode(rc.KeyData)
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) {
		t.Errorf("the kubeconfig's key does not match its certificate: %v", err)
	}

	// A CA that expires first cuts the certificate.
	short := t.TempDir()
	writeCA(t, short, now.Add(48*time.Hour))
	c, err = IssueCredential(CredentialRequest{User: "u", Lifetime: 90 * 24 * time.Hour, Server: "https://h", TLSDir: short}, now)
	if err != nil || c.NotAfter.After(now.Add(48*time.Hour)) || c.CertificateNotes == "" {
		t.Errorf("not cut to the CA's expiry: %v %v", c, err)
	}
}

// TestIssueCredentialRefuses: hostile users, groups, lifetimes and servers, a missing CA,
// and a key that is not the CA's are errors naming what is wrong.
func TestIssueCredentialRefuses(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir, time.Now().AddDate(10, 0, 0))
	ok := CredentialRequest{User: "u", Lifetime: 24 * time.Hour, Server: "https://h:6443", TLSDir: dir}
	cases := []struct {
		name string
		edit func(r *CredentialRequest)
		want string
	}{
		{"empty user", func(r *CredentialRequest) { r.User = "" }, "user is empty"},
		{"newline", func(r *CredentialRequest) { r.User = "a\nb" }, "user"},
		{"comma", func(r *CredentialRequest) { r.User = "a,O=system:masters" }, "character"},
		{"unicode", func(r *CredentialRequest) { r.User = "älice" }, "character"},
		{"huge", func(r *CredentialRequest) { r.User = strings.Repeat("a", 201) }, "at most 200"},
		{"group", func(r *CredentialRequest) { r.Groups = []string{"system:masters\n"} }, "group"},
		{"lifetime 0", func(r *CredentialRequest) { r.Lifetime = 0 }, "lifetime"},
		{"lifetime negative", func(r *CredentialRequest) { r.Lifetime = -time.Hour }, "lifetime"},
		{"lifetime huge", func(r *CredentialRequest) { r.Lifetime = 4 * 365 * 24 * time.Hour }, "lifetime"},
		{"server http", func(r *CredentialRequest) { r.Server = "http://h" }, "server"},
		{"server newline", func(r *CredentialRequest) { r.Server = "https://h\n    insecure-skip-tls-verify: true" }, "server"},
		{"server path", func(r *CredentialRequest) { r.Server = "https://h/x" }, "server"},
		{"no CA", func(r *CredentialRequest) { r.TLSDir = t.TempDir() }, "client CA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			c.edit(&r)
			if _, err := IssueCredential(r, time.Now()); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want one naming %q", err, c.want)
			}
		})
	}
	other := t.TempDir()
	writeCA(t, other, time.Now().AddDate(1, 0, 0))
	k, _ := os.ReadFile(filepath.Join(other, "client-ca.key"))
	os.WriteFile(filepath.Join(dir, "client-ca.key"), k, 0o600)
	if _, err := IssueCredential(ok, time.Now()); err == nil || !strings.Contains(err.Error(), "does not belong to") {
		t.Errorf("a key of another CA: %v", err)
	}
}
