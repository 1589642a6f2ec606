package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mno-sh/mno/internal/shellquote"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FromMyNodeOne starts a lab shaped like a cluster MyNodeOne set up (Options.From).
const FromMyNodeOne = "mynodeone"

// MyNodeOne's side of a lab --from mynodeone: its domain, ACME email and the
// login users its scripts gave the nodes.
const (
	MyNodeOneDomain  = "example.test"
	MyNodeOneEmail   = "ops@example.test"
	MyNodeOneVPSUser = "sammy"
	MyNodeOneUnit    = "mynodeone-sync-controller"
)

var (
	//go:embed mynodeone/traefik.yml
	mnoTraefikYML string
	//go:embed mynodeone/docker-compose.yml
	mnoComposeYML string
	//go:embed mynodeone/mynodeone-sync-controller.service
	mnoUnit string
	//go:embed scripts/cp-systemctl.sh
	cpSystemctlScript string
	//go:embed mynodeone/configmaps.json
	mnoConfigMaps string
)

// seedMyNodeOne gives the lab MyNodeOne's starting point: the control
// plane's root keys (CPRoot/.ssh: id_ed25519, which MyNodeOne's VPS
// orchestrator authorises, and mynodeone_id_ed25519, which its laptop setup
// authorises), each VPS set up as setup-vps-node.sh does (user sammy with
// passwordless sudo, ~/traefik with its docker-compose.yml, traefik.yml,
// config/mynodeone-routes.yml and an acme.json, the container "traefik"
// running, ~/.mynodeone/config.env), each laptop's user alice with both keys
// authorised, the four ConfigMaps as MyNodeOne's scripts write them, and a
// mynodeone-sync-controller unit, enabled and active, on the control plane's
// systemctl stand-in (MNO_CP_SYSTEMCTL). Workers are left alone: MyNodeOne
// never registers them.
func (c *Cluster) seedMyNodeOne(ctx context.Context) error {
	c.CPRoot = filepath.Join(c.Dir, "cp-root")
	sshDir := filepath.Join(c.CPRoot, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return err
	}
	rootKey, err := writeKey(filepath.Join(sshDir, "id_ed25519"), "root@cp")
	if err != nil {
		return err
	}
	laptopKey, err := writeKey(filepath.Join(sshDir, "mynodeone_id_ed25519"), "mynodeone@cp")
	if err != nil {
		return err
	}
	systemd := filepath.Join(c.CPRoot, "systemd")
	if err := os.MkdirAll(systemd, 0o755); err != nil {
		return err
	}
	unit := MyNodeOneUnit + ".service"
	for name, data := range map[string]string{unit: mnoUnit, unit + ".enabled": "", unit + ".active": ""} {
		if err := os.WriteFile(filepath.Join(systemd, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	c.CPSystemctl = filepath.Join(c.CPRoot, "systemctl")
	script := strings.ReplaceAll(cpSystemctlScript, "@DIR@", shellquote.Quote(systemd))
	if err := os.WriteFile(c.CPSystemctl, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		return err
	}

	cert, err := acmeStorage()
	if err != nil {
		return err
	}
	if err := c.writeMyNodeOneConfigMaps(ctx); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		switch n.Kind {
		case KindVPS:
			if err := c.seedVPS(ctx, n, rootKey, cert); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		case KindLaptop:
			if err := c.seedUser(ctx, n.Name, "alice", rootKey+"\n"+laptopKey); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
	}
	return nil
}

// writeKey writes an ed25519 private key (OpenSSH format, 0600) and returns
// its public key line.
func writeKey(file, comment string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
	return line, os.WriteFile(file+".pub", []byte(line+"\n"), 0o644)
}

// sh runs a root shell script in node, failing with its output.
func (c *Cluster) sh(ctx context.Context, node, script string) error {
	var out strings.Builder
	code, err := c.Exec(ctx, node, nil, &out, &out, nil, "sh", "-c", script)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit %d: %s", code, out.String())
	}
	return nil
}

// seedUser creates user with passwordless sudo (/etc/sudoers.d/USER, as
// MyNodeOne's prerequisites ask) and authorises keys for it.
func (c *Cluster) seedUser(ctx context.Context, node, user, keys string) error {
	q := shellquote.Quote
	return c.sh(ctx, node, "set -e; u="+q(user)+"; id \"$u\" >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' \"$u\"\n"+
		"install -d -m 700 -o \"$u\" -g \"$u\" /home/$u/.ssh\n"+
		"printf '%s\\n' "+q(keys)+" > /home/$u/.ssh/authorized_keys\n"+
		"chown \"$u:$u\" /home/$u/.ssh/authorized_keys; chmod 600 /home/$u/.ssh/authorized_keys\n"+
		"printf '%s ALL=(ALL) NOPASSWD:ALL\\n' \"$u\" > /etc/sudoers.d/$u; chmod 440 /etc/sudoers.d/$u\n")
}

// seedVPS sets a VPS up as MyNodeOne's setup-vps-node.sh leaves it.
func (c *Cluster) seedVPS(ctx context.Context, n Node, rootKey, acme string) error {
	u := MyNodeOneVPSUser
	if err := c.seedUser(ctx, n.Name, u, rootKey); err != nil {
		return err
	}
	h, err := c.Host(n.Name)
	if err != nil {
		return err
	}
	home := "/home/" + u
	if err := c.sh(ctx, n.Name, "mkdir -p "+home+"/traefik/config "+home+"/traefik/letsencrypt "+home+"/.mynodeone"); err != nil {
		return err
	}
	traefikYML := strings.ReplaceAll(mnoTraefikYML, "REPLACE_SSL_EMAIL", MyNodeOneEmail)
	compose := strings.ReplaceAll(mnoComposeYML, "REPLACE_VPS_DOMAIN", MyNodeOneDomain)
	configEnv := fmt.Sprintf("# MyNodeOne VPS Edge Node Configuration\n# Generated by control plane orchestrator\nNODE_TYPE=edge\nNODE_NAME=%s\n"+
		"CLUSTER_NAME=%s\nCLUSTER_DOMAIN=%s\nCONTROL_PLANE_IP=%s\nCONTROL_PLANE_SSH_USER=root\nTAILSCALE_IP=%s\nVPS_PUBLIC_IP=%s\n"+
		"VPS_DOMAIN=%s\nVPS_LOCATION=lab\nVPS_NODE_NAME=%s\nVPS_TAILSCALE_IP=%s\nVPS_SSH_USER=%s\nSSL_EMAIL=%s\nPUBLIC_DOMAIN=%s\n"+
		"SKIP_INTERACTIVE=true\nUNATTENDED=1\nVPS_ORCHESTRATED=true\n",
		n.Name, c.ClusterName, c.ClusterName, c.Gateway, n.Addr, n.Addr, MyNodeOneDomain, n.Name, n.Addr, u, MyNodeOneEmail, MyNodeOneDomain)
	for _, f := range []struct {
		path, data string
		mode       os.FileMode
	}{
		{home + "/traefik/traefik.yml", traefikYML, 0o600},
		{home + "/traefik/docker-compose.yml", compose, 0o644},
		{home + "/traefik/config/mynodeone-routes.yml", c.myNodeOneRoutes(), 0o644},
		{home + "/traefik/letsencrypt/acme.json", acme, 0o600},
		{home + "/.mynodeone/config.env", configEnv, 0o600},
	} {
		if err := h.WriteFile(f.path, []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	// docker is installed (get.docker.com) and the compose project is up.
	return c.sh(ctx, n.Name, "set -e; mkdir -p /var/lib/mno-lab && : >/var/lib/mno-lab/docker\n"+
		"chown -R "+u+":"+u+" "+home+"/traefik "+home+"/.mynodeone\n"+
		"docker network create traefik >/dev/null\n"+
		"cd "+home+"/traefik && docker compose up -d\n")
}

// myNodeOneRoutes is config/mynodeone-routes.yml as sync-vps-routes.sh
// writes it in single-domain mode for the lab's public demo service.
func (c *Cluster) myNodeOneRoutes() string {
	sub := c.Demo.Name
	host := sub + "." + MyNodeOneDomain
	return fmt.Sprintf(`# MyNodeOne Routes - Auto-generated from service registry
# DO NOT EDIT MANUALLY - Changes will be overwritten
#
# To update routes:
#   1. Update service registry on control plane
#   2. Run: sudo ./scripts/sync-vps-routes.sh
#
Generated on: Sat Nov 22 20:19:01 UTC 2025

http:
  routers:
    %[1]s:
      rule: "Host(`+"`%[2]s`"+`)"
      service: %[1]s-service
      entryPoints:
        - websecure
      tls:
        certResolver: letsencrypt

    %[1]s-http:
      rule: "Host(`+"`%[2]s`"+`)"
      service: %[1]s-service
      entryPoints:
        - web
      middlewares:
        - https-redirect

  services:
    %[1]s-service:
      loadBalancer:
        servers:
          - url: "http://%[3]s:%[4]d"

  middlewares:
    https-redirect:
      redirectScheme:
        scheme: https
        permanent: true
`, sub, host, c.Demo.Addr, c.Demo.Port)
}

// acmeStorage is an acme.json as Traefik writes it for the resolver
// "letsencrypt": an account and one certificate for the demo host and the
// dashboard host — self-signed here, since nothing in a lab reaches Let's
// Encrypt, but in the format Traefik loads, so the certificate it serves
// shows whether the storage was carried over.
func acmeStorage() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	names := []string{"demo." + MyNodeOneDomain, "traefik." + MyNodeOneDomain}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		Issuer:       pkix.Name{CommonName: "mno lab (stands in for Let's Encrypt)"},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	acct, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	doc := map[string]any{"letsencrypt": map[string]any{
		"Account": map[string]any{
			"Email": MyNodeOneEmail,
			"Registration": map[string]any{
				"body": map[string]any{"status": "valid", "contact": []string{"mailto:" + MyNodeOneEmail}},
				"uri":  "https://acme-v02.api.letsencrypt.org/acme/acct/1234567890",
			},
			"PrivateKey": b64(x509.MarshalPKCS1PrivateKey(acct)),
			"KeyType":    "2048",
		},
		"Certificates": []any{map[string]any{
			"domain":      map[string]any{"main": names[0], "sans": names[1:]},
			"certificate": b64(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			"key":         b64(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
			"Store":       "default",
		}},
	}}
	data, err := json.MarshalIndent(doc, "", "  ")
	return string(data) + "\n", err
}

// writeMyNodeOneConfigMaps replaces init's ConfigMaps by MyNodeOne's:
// mynodeone/configmaps.json, which MyNodeOne's own registry scripts wrote
// (mynodeone/gen/gen.sh: node-registry-manager.sh stores pretty JSON,
// service-registry.sh and multi-domain-registry.sh flatten it with sed/tr),
// with its placeholder addresses replaced by the lab's.
func (c *Cluster) writeMyNodeOneConfigMaps(ctx context.Context) error {
	vps, ok1 := c.Node("vps-1")
	laptop, ok2 := c.Node("laptop-1")
	if !ok1 || !ok2 || len(c.Nodes) != 2+c.count(KindWorker) {
		return fmt.Errorf("a lab from MyNodeOne has one VPS and one laptop (and any number of workers, which MyNodeOne never registers): its ConfigMaps are fixtures made by MyNodeOne's scripts")
	}
	repl := strings.NewReplacer("100.101.1.11", vps.Addr, "100.101.2.22", laptop.Addr, "100.101.3.33", c.Demo.Addr, "100.101.0.1", c.Gateway)
	var cms map[string]map[string]string
	if err := json.Unmarshal([]byte(mnoConfigMaps), &cms); err != nil {
		return fmt.Errorf("mynodeone/configmaps.json: %w", err)
	}
	for _, data := range cms {
		for k, v := range data {
			data[k] = repl.Replace(v)
		}
	}
	cms["cluster-info"]["cluster-name"] = c.ClusterName
	cms["cluster-info"]["cluster-domain"] = c.ClusterName
	cs, err := c.client()
	if err != nil {
		return err
	}
	api := cs.ConfigMaps("kube-system")
	for name, data := range cms {
		if err := api.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}, Data: data}
		if _, err := api.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) count(kind string) int {
	n := 0
	for _, x := range c.Nodes {
		if x.Kind == kind {
			n++
		}
	}
	return n
}
