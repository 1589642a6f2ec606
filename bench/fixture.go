package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.starlark.net/starlark"
	xssh "golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/kubeapi"
)

// Paths of the files sync converges (roles/traefik.star, roles/hostsfile.star).
const (
	RoutesPath = "/etc/traefik/dynamic/mno-routes.yml"
	HostsPath  = "/etc/hosts"
	// RoutesTmpDir and HostsTmpDir are where the floor stages its writes:
	// the same filesystem, outside the directory Traefik watches.
	RoutesTmpDir = "/etc/traefik"
	HostsTmpDir  = "/etc"
)

// Markers of mno's /etc/hosts block (roles/hosts.star; ComputeExpected
// checks they still match).
const (
	HostsBegin = "# BEGIN mno (managed by mno sync; do not edit)"
	HostsEnd   = "# END mno"
)

// staleHosts is a laptop's /etc/hosts before a sync that changes it, with
// {{name}} for its host name: Debian's lines and the block an earlier sync
// left, when one service was registered.
const staleHosts = "127.0.0.1\tlocalhost\n" +
	"127.0.1.1\t{{name}}\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n" +
	"100.64.0.1\tcp.tailnet.example\n" +
	"\n" + HostsBegin + "\n100.122.68.99\told.home.local\n" + HostsEnd + "\n"

// StaleHosts is staleHosts for the host called name.
func StaleHosts(name string) string { return strings.ReplaceAll(staleHosts, "{{name}}", name) }

// StaleRoutes is a VPS's routes file before a sync that changes it: the one
// an earlier sync wrote when no service was public.
const StaleRoutes = "# Managed by mno (sync). Edits are overwritten: change the service-registry ConfigMap instead.\n{}\n"

// Namespace and names of the cluster's ConfigMaps (roles/registry.star).
const (
	Namespace   = "kube-system"
	RegistryCM  = "sync-controller-registry"
	ServicesCM  = "service-registry"
	DomainsCM   = "domain-registry"
	ClusterInfo = "cluster-info"
)

// ConfigMaps lists the four, for resourceVersion checks.
var ConfigMaps = []string{RegistryCM, ServicesCM, DomainsCM, ClusterInfo}

// Node is one registered node of a benchmark.
type Node struct {
	Name, Kind, User string // Kind: "vps" or "laptop"
	Addr             string
	Port             int
	HostKey          string // "ssh-ed25519 AAAA…"
	KnownHostsLine   string
	Domain           string // VPS only
	Host             *hosts.Host
}

// Path is the file sync converges on the node.
func (n Node) Path() string {
	if n.Kind == "vps" {
		return RoutesPath
	}
	return HostsPath
}

// NodeNames are the names of n nodes, VPSes and laptops alternating
// (vps-1, laptop-1, vps-2, …), so the first k of them are mixed too.
func NodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		if i%2 == 0 {
			names[i] = fmt.Sprintf("vps-%d", i/2+1)
		} else {
			names[i] = fmt.Sprintf("laptop-%d", i/2+1)
		}
	}
	return names
}

// Domains the VPSes serve, in turn.
var Domains = []string{"example.com", "example.net"}

// NodesOf describes the lab's hosts as registered nodes: VPSes log in as
// root (add-vps's default), laptops as the lab's login user with sudo.
func NodesOf(lab *hosts.Lab) []Node {
	var nodes []Node
	vps := 0
	for _, h := range lab.Hosts() {
		n := Node{Name: h.Name, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey, KnownHostsLine: h.KnownHostsLine(), Host: h}
		if strings.HasPrefix(h.Name, "vps-") {
			n.Kind, n.User, n.Domain = "vps", "root", Domains[vps%len(Domains)]
			vps++
		} else {
			n.Kind, n.User = "laptop", lab.LoginUser()
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// Services is a service-registry of about twenty services as MyNodeOne's
// scripts leave it: three public (routed by every VPS on its own domain),
// one more routed on an extra domain through routing.json, all named in the
// laptops' /etc/hosts.
func Services() map[string]any {
	names := []string{"immich", "nextcloud", "vaultwarden", "jellyfin", "gitea", "grafana", "argocd", "minio-console",
		"longhorn", "dashboard", "open-webui", "paperless", "homeassistant", "uptime-kuma", "prometheus", "loki",
		"photoprism", "syncthing", "adguard", "miniflux"}
	public := map[string]bool{"immich": true, "nextcloud": true, "vaultwarden": true}
	svc := map[string]any{}
	for i, n := range names {
		sub := strings.TrimSuffix(n, "-console")
		svc[n] = map[string]any{
			"subdomain": sub, "namespace": n, "service": n + "-server",
			"ip": fmt.Sprintf("100.122.68.%d", 200+i), "port": 80, "public": public[n],
			"updated": "2026-01-10T12:00:00Z",
		}
	}
	return svc
}

// Routing is routing.json: gitea is published on one more domain by every
// VPS (listed: an entry with no VPS serves its service on none, as MyNodeOne
// reads it).
func Routing(nodes []Node) map[string]any {
	vps := []string{}
	for _, n := range nodes {
		if n.Kind == "vps" {
			vps = append(vps, n.Addr)
		}
	}
	return map[string]any{"gitea": map[string]any{"domains": []string{"code.example.org"}, "vps_nodes": vps,
		"strategy": "round-robin", "updated": "2026-01-10T12:00:00Z"}}
}

// RegistryDoc is registry.json with nodes registered as the add playbooks
// leave them (roles/registration.star register + record_results) and then synced
// once with older services: status active, applied the hash of that older
// content, so the next sync changes every node.
func RegistryDoc(nodes []Node) map[string]any {
	var vps, laptops []any
	for _, n := range nodes {
		e := map[string]any{
			"webhook_port": 8080, "repo_path": "", "registered": "2026-01-10T12:00:00+00:00",
			"last_sync": "2026-01-10T12:01:00Z", "status": "active",
			"ip": n.Addr, "name": n.Name, "ssh_user": n.User, "ssh_port": n.Port, "host_key": n.HostKey,
			"applied": "0000000000000000000000000000000000000000000000000000000000000000",
		}
		if n.Kind == "vps" {
			e["public_ip"] = "203.0.113." + n.Addr[strings.LastIndex(n.Addr, ".")+1:]
			e["domain"] = n.Domain
			vps = append(vps, e)
		} else {
			laptops = append(laptops, e)
		}
	}
	if vps == nil {
		vps = []any{}
	}
	if laptops == nil {
		laptops = []any{}
	}
	return map[string]any{
		"management_laptops": laptops, "vps_nodes": vps, "worker_nodes": []any{},
		"metadata": map[string]any{"version": "1.0", "last_updated": "2026-01-10T12:01:00+00:00", "updated_by": "mno"},
	}
}

// DomainsDoc is domains.json with every VPS recorded, as add-vps leaves it.
func DomainsDoc(nodes []Node) map[string]any {
	doms := map[string]any{}
	var vps []any
	for _, n := range nodes {
		if n.Kind != "vps" {
			continue
		}
		doms[n.Domain] = map[string]any{"description": "VPS edge node domain", "registered": "2026-01-10T12:00:00Z", "status": "active"}
		vps = append(vps, map[string]any{"tailscale_ip": n.Addr, "public_ip": "", "location": "bench",
			"registered": "2026-01-10T12:00:00Z", "status": "active"})
	}
	return map[string]any{"domains": doms, "vps_nodes": vps}
}

func indent(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

// WriteCluster writes the four ConfigMaps for nodes.
func WriteCluster(ctx context.Context, client kubernetes.Interface, nodes []Node) error {
	data := map[string]map[string]string{
		RegistryCM:  {"registry.json": indent(RegistryDoc(nodes))},
		ServicesCM:  {"services.json": indent(Services())},
		DomainsCM:   {"domains.json": indent(DomainsDoc(nodes)), "routing.json": indent(Routing(nodes))},
		ClusterInfo: {"cluster-name": "home", "cluster-domain": "home", "control-plane-ip": "100.64.0.1"},
	}
	for _, name := range ConfigMaps {
		if err := setConfigMap(ctx, client, name, data[name]); err != nil {
			return err
		}
	}
	return enrolLaptops(ctx, client, nodes)
}

// enrolLaptops writes each laptop's enrolment as add-laptop leaves it (the
// ClusterRoleBinding mno-laptop-NAME, roles/laptop.star), with a certificate
// not due for renewal: sync pushes laptops only what matches an enrolment.
func enrolLaptops(ctx context.Context, client kubernetes.Interface, nodes []Node) error {
	crbs := client.RbacV1().ClusterRoleBindings()
	for _, n := range nodes {
		if n.Kind != "laptop" {
			continue
		}
		user := "mno:laptop:" + n.Name + ":000000000000"
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "mno-laptop-" + n.Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "mno", "mno.sh/credential": "laptop"},
				Annotations: map[string]string{
					"mno.sh/laptop": n.Name, "mno.sh/address": n.Addr, "mno.sh/ssh-user": n.User,
					"mno.sh/ssh-port": fmt.Sprint(n.Port), "mno.sh/host-key": n.HostKey, "mno.sh/access": "admin",
					"mno.sh/server": "https://100.64.0.1:6443", "mno.sh/lifetime": "2160h",
					"mno.sh/serial": "000000000000", "mno.sh/not-after": "2099-01-01T00:00:00Z",
					"mno.sh/renew-after": "2098-01-01T00:00:00Z",
				}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		}
		if err := crbs.Delete(ctx, crb.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if _, err := crbs.Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// ResetRegistry puts registry.json back to its state before a sync.
func ResetRegistry(ctx context.Context, client kubernetes.Interface, nodes []Node) error {
	return setConfigMap(ctx, client, RegistryCM, map[string]string{"registry.json": indent(RegistryDoc(nodes))})
}

func setConfigMap(ctx context.Context, client kubernetes.Interface, name string, data map[string]string) error {
	cms := client.CoreV1().ConfigMaps(Namespace)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cm.Data = data
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// ResourceVersions returns the resourceVersion of each of the four ConfigMaps.
func ResourceVersions(ctx context.Context, client kubernetes.Interface) (map[string]string, error) {
	rv := map[string]string{}
	for _, name := range ConfigMaps {
		cm, err := client.CoreV1().ConfigMaps(Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		rv[name] = cm.ResourceVersion
	}
	return rv, nil
}

// PrepareHosts makes each node look as the add playbooks leave it: the
// Traefik dynamic directory on VPSes.
func PrepareHosts(nodes []Node) error {
	for _, n := range nodes {
		if n.Kind != "vps" {
			continue
		}
		if out, err := n.Host.Command(context.Background(), false, "mkdir", "-p", "/etc/traefik/dynamic").CombinedOutput(); err != nil {
			return fmt.Errorf("%s: mkdir: %v: %s", n.Name, err, out)
		}
	}
	return ResetHosts(nodes)
}

// ResetHosts puts back the files as an earlier sync left them, with older
// services: the stale routes file on VPSes, the stale block in laptops'
// /etc/hosts (both root's, mode 0644).
func ResetHosts(nodes []Node) error {
	for _, n := range nodes {
		content := StaleHosts(n.Name)
		if n.Kind == "vps" {
			content = StaleRoutes
		}
		if err := n.Host.WriteFile(n.Path(), []byte(content), 0o644); err != nil {
			return fmt.Errorf("%s: %v", n.Name, err)
		}
	}
	return nil
}

// Expected is what every node should hold after a sync.
type Expected struct {
	Files map[string]string // node name → content of its file
	Block string            // the /etc/hosts block, markers included
	Begin string            // its first line
	End   string            // its last line
}

// expectScript computes the files with mno's own roles from the cluster's
// ConfigMaps, so Ansible and the floor push exactly what sync computes.
const expectScript = `
load("//roles/registry.star", "registry")
load("//roles/traefik.star", "traefik")
load("//roles/hosts.star", "entries", "render", "BEGIN", "END")

def main(ctx):
    state = registry.read()
    domain = state.info["cluster-domain"]
    lines, _ = entries(state.services, domain)
    files = {}
    for n in state.nodes:
        e = n.entry
        if n.kind == "vps":
            p = traefik.published(state.services, state.routing, e.get("domain") or "", e["ip"])
            files[e["name"]] = traefik.routes_file(p.routes)
        else:
            files[e["name"]] = render(STALE.replace("{{name}}", e["name"]), lines, domain)
    print(json.encode({"files": files, "block": BEGIN + "\n" + "\n".join(lines) + "\n" + END + "\n", "begin": BEGIN, "end": END}))
`

// ComputeExpected runs expectScript against the cluster.
func ComputeExpected(ctx context.Context, kubeconfig, dir string) (*Expected, error) {
	file := filepath.Join(dir, "expect.star")
	if err := os.WriteFile(file, []byte(expectScript), 0o644); err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	res := engine.Run(ctx, engine.Options{
		Playbook: file, Root: dir, Embedded: mno.Files,
		Config:  runctx.Config{Home: dir, Kubeconfig: kubeconfig, Getenv: func(string) string { return "" }},
		Globals: starlark.StringDict{"STALE": starlark.String(staleHosts)},
		Stdout:  &stdout, Stderr: &stderr,
	})
	if res.Exit != 0 {
		return nil, fmt.Errorf("computing the expected files: exit %d: %v\n%s", res.Exit, res.Err, stderr.String())
	}
	var e struct {
		Files             map[string]string
		Block, Begin, End string
	}
	if err := json.Unmarshal(stdout.Bytes(), &e); err != nil {
		return nil, fmt.Errorf("expected files: %v: %q", err, stdout.String())
	}
	if e.Begin != HostsBegin || e.End != HostsEnd {
		return nil, fmt.Errorf("roles/hosts.star's markers are now %q and %q: update bench.HostsBegin and HostsEnd", e.Begin, e.End)
	}
	return &Expected{Files: e.Files, Block: e.Block, Begin: e.Begin, End: e.End}, nil
}

// CheckFiles compares every node's file with what it should hold; it returns
// one line per difference.
func CheckFiles(nodes []Node, want *Expected) []string {
	var bad []string
	for _, n := range nodes {
		got, err := n.Host.ReadFile(n.Path())
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s:%s: %v", n.Name, n.Path(), err))
		case string(got) != want.Files[n.Name]:
			bad = append(bad, fmt.Sprintf("%s:%s differs (%d bytes, want %d)", n.Name, n.Path(), len(got), len(want.Files[n.Name])))
		}
	}
	return bad
}

// Identity is a fresh control plane key: the private key file and the
// authorized_keys line.
func Identity(dir string) (file, line string, signer xssh.Signer, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	block, err := xssh.MarshalPrivateKey(priv, "mno-bench")
	if err != nil {
		return "", "", nil, err
	}
	file = filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", nil, err
	}
	signer, err = xssh.NewSignerFromKey(priv)
	if err != nil {
		return "", "", nil, err
	}
	return file, strings.TrimSpace(string(xssh.MarshalAuthorizedKey(signer.PublicKey()))), signer, nil
}

// StartAPI starts the real kube-apiserver in dir/kubeapi.
func StartAPI(ctx context.Context, dir string) (*kubeapi.Server, error) {
	d := filepath.Join(dir, "kubeapi")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return kubeapi.Start(ctx, kubeapi.Options{Dir: d})
}
