package kubeapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
)

// pkiFiles are the paths of the files kube-apiserver reads.
type pkiFiles struct {
	caCert, servingCert, servingKey, saPublic, saPrivate string
}

// writePKI creates the server's CA, serving certificate and service-account signing key under
// Dir/pki.
func (s *Server) writePKI(serviceCIDR string) (pkiFiles, error) {
	dir := filepath.Join(s.Dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return pkiFiles{}, err
	}
	ca, err := newAuthority()
	if err != nil {
		return pkiFiles{}, err
	}
	s.ca = ca
	ip, err := serviceIP(serviceCIDR)
	if err != nil {
		return pkiFiles{}, fmt.Errorf("service CIDR: %w", err)
	}
	serving, err := ca.serving(ip, s.bind)
	if err != nil {
		return pkiFiles{}, err
	}
	sa, err := newKey()
	if err != nil {
		return pkiFiles{}, err
	}
	saPrivate, err := privateKeyPEM(sa)
	if err != nil {
		return pkiFiles{}, err
	}
	saPublic, err := x509MarshalPublic(sa.Public())
	if err != nil {
		return pkiFiles{}, err
	}
	keyPEM, err := privateKeyPEM(ca.key)
	if err != nil {
		return pkiFiles{}, err
	}
	tls := filepath.Join(dir, K3sTLSDir)
	if err := os.MkdirAll(tls, 0o700); err != nil {
		return pkiFiles{}, err
	}
	f := pkiFiles{
		caCert:      filepath.Join(dir, "ca.crt"),
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servingKey:  filepath.Join(dir, "apiserver.key"),
		saPublic:    filepath.Join(dir, "sa.pub"),
		saPrivate:   filepath.Join(dir, "sa.key"),
	}
	return f, writeFiles(map[string][]byte{
		f.caCert:      ca.certPEM,
		f.servingCert: serving.cert,
		f.servingKey:  serving.key,
		f.saPublic:    saPublic,
		f.saPrivate:   saPrivate,
		// k3s's names for the same CA (it signs client and serving
		// certificates here): what mno reads on a k3s server.
		filepath.Join(tls, "client-ca.crt"): ca.certPEM,
		filepath.Join(tls, "client-ca.key"): keyPEM,
		filepath.Join(tls, "server-ca.crt"): ca.certPEM,
	})
}

// K3sTLSDir is the directory under Dir/pki that holds the server's CA under the names k3s
// gives its own in /var/lib/rancher/k3s/server/tls: client-ca.crt, client-ca.key (the key
// that signs client certificates the server accepts) and server-ca.crt (what clients verify
// the server with).
const K3sTLSDir = "k3s-tls"

// TLSDir returns the stand-in of k3s's /var/lib/rancher/k3s/server/tls (see [K3sTLSDir]),
// where mno issues client certificates ($MNO_K3S_TLS_DIR). It exists for an opened server too.
func (s *Server) TLSDir() string { return filepath.Join(s.Dir, "pki", K3sTLSDir) }

var errNoCA = errors.New("kubeapi: a server from Open cannot issue certificates")

// UserConfig returns a client configuration authenticating as user name in groups, with no
// permissions beyond what RBAC grants them (system:authenticated is added by the server).
// Tests use it to check that a user without a Role gets Forbidden.
func (s *Server) UserConfig(name string, groups ...string) (*rest.Config, error) {
	if s.ca == nil {
		return nil, errNoCA
	}
	kp, err := s.ca.client(name, groups...)
	if err != nil {
		return nil, err
	}
	return s.restConfig(kp), nil
}

// UserKubeconfig writes a kubeconfig for user name in groups (see [Server.UserConfig]) to a new
// file under Dir/users and returns its path, for tools such as kubectl.
func (s *Server) UserKubeconfig(name string, groups ...string) (string, error) {
	if s.ca == nil {
		return "", errNoCA
	}
	kp, err := s.ca.client(name, groups...)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.Dir, "users")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, url.PathEscape(name)+"-*.kubeconfig")
	if err != nil {
		return "", err
	}
	_, err = f.Write(s.kubeconfig(name, kp))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// kubeconfig renders a kubeconfig with one cluster, one user and one context, credentials
// inline so that the file stands alone.
func (s *Server) kubeconfig(user string, kp keyPair) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: mno-lab
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: mno-lab
  context:
    cluster: mno-lab
    user: %[3]s
current-context: mno-lab
`, quote(s.URL), b64(s.ca.certPEM), quote(user), b64(kp.cert), b64(kp.key))
}

// quote renders s as a JSON string, which is also a valid YAML scalar whatever s contains.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
