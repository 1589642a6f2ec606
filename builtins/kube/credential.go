package kube

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/starkit"
)

// K3sTLSDir is where a k3s server keeps its certificate authorities; $MNO_K3S_TLS_DIR
// overrides it (the lab's stand-in).
const K3sTLSDir = "/var/lib/rancher/k3s/server/tls"

// Bounds of a credential's lifetime: long enough to be worth issuing, short enough that a
// leaked one runs out.
const (
	MinLifetime = time.Hour
	MaxLifetime = 3 * 365 * 24 * time.Hour
)

// CredentialRequest is what a client certificate is issued for.
type CredentialRequest struct {
	// User is the certificate's common name, the user the API server sees.
	User string
	// SerialInUser appends ":" and the first 12 hex digits of the serial to User, so each
	// certificate is a user of its own and a binding names exactly one.
	SerialInUser bool
	// Groups are the certificate's organisations, the user's groups.
	Groups []string
	// Lifetime is how long it is valid, between MinLifetime and MaxLifetime.
	Lifetime time.Duration
	// Server is the API server URL written into the kubeconfig (https://HOST[:PORT]).
	Server string
	// TLSDir holds client-ca.crt and client-ca.key (which sign it) and server-ca.crt
	// (which the kubeconfig trusts for the server).
	TLSDir string
}

// Credential is an issued client certificate and the kubeconfig that carries it. The key
// exists only in Kubeconfig, in memory: it is never written on the control plane.
type Credential struct {
	User, Serial                     string
	Groups                           []string
	NotBefore, NotAfter, RenewAfter  time.Time
	Kubeconfig                       []byte
	CertificatePEM, CertificateNotes string
}

// CheckCredentialName checks a user or group name for a certificate: printable, no
// separators the API server or a kubeconfig would read differently, at most 200 bytes.
func CheckCredentialName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > 200 {
		return fmt.Errorf("%s is %d bytes long, at most 200", what, len(s))
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || unicode.IsSpace(r) || strings.ContainsRune(`,/\"'`, r) {
			return fmt.Errorf("%s %q has the character %q (letters, digits and -_.:@ only)", what, s, r)
		}
	}
	return nil
}

// CheckServer checks an API server URL: https://HOST[:PORT] and nothing else.
func CheckServer(server string) error {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") || strings.ContainsAny(server, " \t\r\n") {
		return fmt.Errorf("server %q is not https://HOST[:PORT]", server)
	}
	return nil
}

// IssueCredential signs a new client certificate for req with the cluster's client CA and
// returns it with a kubeconfig holding it and its fresh private key.
func IssueCredential(req CredentialRequest, now time.Time) (*Credential, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	caCert, caKey, err := loadCA(req.TLSDir)
	if err != nil {
		return nil, err
	}
	serverCA, err := os.ReadFile(filepath.Join(req.TLSDir, "server-ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("the server CA: %w", err)
	}
	if b, _ := pem.Decode(serverCA); b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", filepath.Join(req.TLSDir, "server-ca.crt"))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	hexSerial := fmt.Sprintf("%032x", serial)
	user := req.User
	if req.SerialInUser {
		user += ":" + hexSerial[:12]
	}
	c := &Credential{User: user, Serial: hexSerial, Groups: append([]string(nil), req.Groups...),
		NotBefore: now.Add(-5 * time.Minute).UTC().Truncate(time.Second), NotAfter: now.Add(req.Lifetime).UTC().Truncate(time.Second)}
	if c.NotAfter.After(caCert.NotAfter) {
		c.NotAfter = caCert.NotAfter.UTC().Truncate(time.Second)
		c.CertificateNotes = "cut to the client CA's expiry " + c.NotAfter.Format(time.RFC3339)
	}
	c.RenewAfter = now.Add(c.NotAfter.Sub(now) * 2 / 3).UTC().Truncate(time.Second)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: user, Organization: req.Groups},
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign the certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	c.CertificatePEM = string(certPEM)
	c.Kubeconfig = kubeconfig(req.Server, user, serverCA, certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return c, nil
}

// loadCA reads client-ca.crt and client-ca.key and checks that they belong together.
func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certFile, keyFile := filepath.Join(dir, "client-ca.crt"), filepath.Join(dir, "client-ca.key")
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("the cluster's client CA: %w (on k3s it is in %s; $MNO_K3S_TLS_DIR names another directory)", err, K3sTLSDir)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("the cluster's client CA key: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%s holds no PEM key", keyFile)
	}
	var key any
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not a signing key", keyFile)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := signer.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", keyFile, certFile)
	}
	return cert, signer, nil
}

// kubeconfig renders a standalone kubeconfig (JSON, which is YAML) with one cluster, user and
// context, all called "default" as in k3s.yaml.
func kubeconfig(server, user string, serverCA, cert, key []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	cfg := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{"name": "default", "cluster": map[string]any{
			"server": server, "certificate-authority-data": b64(serverCA)}}},
		"users": []any{map[string]any{"name": "default", "user": map[string]any{
			"client-certificate-data": b64(cert), "client-key-data": b64(key)}}},
		"contexts": []any{map[string]any{"name": "default", "context": map[string]any{
			"cluster": "default", "user": "default"}}},
		"current-context": "default",
		"preferences":     map[string]any{},
	}
	out, _ := json.MarshalIndent(cfg, "", "  ")
	return append(out, '\n')
}

func credentialIssue(k *call) (starlark.Value, error) {
	var (
		user, server, tlsDir string
		groupsV              *starlark.List
		serialInUser         bool
		lifetime             = starkit.Duration{D: 90 * 24 * time.Hour}
	)
	if err := k.unpack("user", &user, "server", &server, "groups?", &groupsV,
		"lifetime?", &lifetime, "tls_dir?", &tlsDir, "serial_in_user?", &serialInUser); err != nil {
		return nil, err
	}
	var groups []string
	if groupsV != nil {
		for i := 0; i < groupsV.Len(); i++ {
			g, ok := starlark.AsString(groupsV.Index(i))
			if !ok {
				return nil, k.errorf("groups[%d]: got %s, want string", i, groupsV.Index(i).Type())
			}
			groups = append(groups, g)
		}
	}
	if tlsDir == "" {
		tlsDir = k.r.Config.Getenv("MNO_K3S_TLS_DIR")
	}
	if tlsDir == "" {
		tlsDir = K3sTLSDir
	}
	req := CredentialRequest{User: user, SerialInUser: serialInUser, Groups: groups, Lifetime: lifetime.D, Server: server, TLSDir: tlsDir}
	// Checked before the journal entry, so a bad value is the caller's error.
	if err := checkRequest(req); err != nil {
		return nil, k.fail(err)
	}
	var c *Credential
	_, err := k.journal(journal.Op{ // journal, not do: issuing needs no cluster
		// Issuing changes nothing anywhere (the key lives in memory until a
		// put writes it), so it runs in dry-run too.
		Target: "local", Kind: "credential.issue", Desc: user + " (client CA " + tlsDir + ")",
		Apply: func(ctx context.Context) (journal.Change, error) {
			var err error
			if c, err = IssueCredential(req, time.Now()); err != nil {
				return journal.Change{}, err
			}
			note := "serial " + c.Serial[:12] + ", until " + c.NotAfter.Format(time.RFC3339)
			if c.CertificateNotes != "" {
				note += " (" + c.CertificateNotes + ")"
			}
			return journal.Change{Note: note}, nil
		},
	})
	if err != nil {
		return nil, err
	}
	gs := make([]starlark.Value, len(c.Groups))
	for i, g := range c.Groups {
		gs[i] = starlark.String(g)
	}
	return starlarkstruct.FromStringDict(starlark.String("credential"), starlark.StringDict{
		"user":        starlark.String(c.User),
		"groups":      starlark.NewList(gs),
		"serial":      starlark.String(c.Serial),
		"not_before":  starlark.String(c.NotBefore.Format(time.RFC3339)),
		"not_after":   starlark.String(c.NotAfter.Format(time.RFC3339)),
		"renew_after": starlark.String(c.RenewAfter.Format(time.RFC3339)),
		"kubeconfig":  k.r.Secret(string(c.Kubeconfig)),
	}), nil
}

// checkRequest checks what can be checked without reading the CA.
func checkRequest(req CredentialRequest) error {
	if err := CheckCredentialName("user", req.User); err != nil {
		return err
	}
	for _, g := range req.Groups {
		if err := CheckCredentialName("group", g); err != nil {
			return err
		}
	}
	if req.Lifetime < MinLifetime || req.Lifetime > MaxLifetime {
		return fmt.Errorf("lifetime %s is out of range (%s to %dd)", req.Lifetime, MinLifetime, MaxLifetime/(24*time.Hour))
	}
	if err := CheckServer(req.Server); err != nil {
		return err
	}
	if req.TLSDir == "" {
		return errors.New("no TLS directory")
	}
	return nil
}
