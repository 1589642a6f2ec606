package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/lab/kubeapi"
)

// agentUser is who the join token authenticates as: the k3s agent stand-ins,
// allowed to register Nodes and report their status, nothing else.
const agentUser = "mno-lab:k3s-agent"

// startAPI starts kube-apiserver on the gateway, with the join token as a
// bearer token for the agents, and writes the stand-ins of the k3s server's
// token and kubeconfig.
func (c *Cluster) startAPI(ctx context.Context, bins kubeapi.Binaries) error {
	k3sDir := filepath.Join(c.Dir, "k3s")
	for _, d := range []string{c.APIDir, k3sDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// A k3s token: K10<hash>::server:<password>. The hash is not checked here.
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	sum := sha256.Sum256(secret)
	token := "K10" + hex.EncodeToString(sum[:]) + "::server:" + hex.EncodeToString(secret)
	c.TokenFile = filepath.Join(k3sDir, "node-token")
	if err := os.WriteFile(c.TokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	tokens := filepath.Join(c.APIDir, "tokens.csv")
	if err := os.WriteFile(tokens, fmt.Appendf(nil, "%s,%s,%s\n", token, agentUser, agentUser), 0o600); err != nil {
		return err
	}
	api, err := kubeapi.Start(ctx, kubeapi.Options{Dir: c.APIDir, Binaries: bins, BindAddress: c.Gateway, Port: APIPort,
		Detached: c.Detached, APIServerArgs: []string{"--token-auth-file=" + tokens}})
	if err != nil {
		return err
	}
	c.api = api
	c.APIServer, c.Kubeconfig, c.TLSDir = api.URL, api.Kubeconfig, api.TLSDir()
	cs, err := kclient.New(api.Config)
	if err != nil {
		return err
	}
	if err := allowAgents(ctx, cs); err != nil {
		return fmt.Errorf("RBAC for the k3s agents: %w", err)
	}
	// What k3s writes to /etc/rancher/k3s/k3s.yaml: the admin's kubeconfig
	// with k3s's loopback URL, which the laptop role replaces by the control
	// plane's address (here the gateway, where the server does listen).
	admin, err := os.ReadFile(api.Kubeconfig)
	if err != nil {
		return err
	}
	c.K3sKubeconfig = filepath.Join(k3sDir, "k3s.yaml")
	k3s := bytes.ReplaceAll(admin, []byte(fmt.Sprintf("%q", api.URL)), []byte(`"https://127.0.0.1:6443"`))
	if !bytes.Contains(k3s, []byte("https://127.0.0.1:6443")) {
		return fmt.Errorf("cannot find the server URL %s in %s", api.URL, api.Kubeconfig)
	}
	return os.WriteFile(c.K3sKubeconfig, k3s, 0o600)
}

func allowAgents(ctx context.Context, cs *kclient.Client) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: agentUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"get", "update", "patch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: agentUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: agentUser},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: agentUser}},
	}
	if _, err := cs.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := cs.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// Config is the control plane configuration of playbooks run against the
// lab: its identity and API server, and its environment (Env) for local.env.
func (c *Cluster) Config() runctx.Config {
	env := map[string]string{}
	for _, v := range c.Env() {
		env[v.Name] = v.Value
	}
	return runctx.Config{
		Home:       c.Home,
		Identity:   c.Identity,
		Kubeconfig: c.Kubeconfig,
		Getenv: func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return os.Getenv(k)
		},
	}
}

// initCluster runs the embedded init playbook, as `mno init` does.
func (c *Cluster) initCluster(ctx context.Context) error {
	var out bytes.Buffer
	res := engine.Run(ctx, engine.Options{
		Playbook: "init",
		Params:   []string{"cluster_name=" + c.ClusterName, "control_plane_ip=" + c.Gateway},
		Config:   c.Config(),
		Root:     c.Dir, // no playbooks/ there: the embedded init
		Embedded: mno.Files,
		Stdout:   &out,
		Stderr:   &out,
	})
	if res.Exit != 0 {
		return fmt.Errorf("init playbook: exit %d:\n%s", res.Exit, logTail(&out, 20))
	}
	return nil
}

// ResetCluster deletes the mno ConfigMaps and runs init again, then
// publishes the demo service again: the cluster state of a fresh lab, for a
// reused one (`mno test --reuse`). Nodes keep their files.
func (c *Cluster) ResetCluster(ctx context.Context) error {
	cs, err := c.client()
	if err != nil {
		return err
	}
	for _, name := range []string{"sync-controller-registry", "service-registry", "domain-registry", "cluster-info"} {
		err := cs.ConfigMaps("kube-system").Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if err := c.initCluster(ctx); err != nil {
		return err
	}
	return c.publishDemo(ctx)
}

func (c *Cluster) client() (*kclient.Client, error) {
	if c.api == nil {
		api, err := kubeapi.Open(c.APIDir)
		if err != nil {
			return nil, err
		}
		c.api = api
	}
	return kclient.New(c.api.Config)
}

// EnvVar is one variable `mno lab env` exports.
type EnvVar struct{ Name, Value string }

// Env lists what a shell needs to use the lab: MNO_LAB, MNO_HOME,
// KUBECONFIG, the stand-ins of the k3s server's files (join token,
// k3s.yaml, the TLS directory with the client CA), CP_ADDR (the address
// nodes see the control plane connect from) and, per node, its address and
// host key (VPS_1_ADDR, VPS_1_HOST_KEY, …).
func (c *Cluster) Env() []EnvVar {
	vars := []EnvVar{
		{"MNO_LAB", c.Name},
		{"MNO_HOME", c.Home},
		{"KUBECONFIG", c.Kubeconfig},
		{"MNO_K3S_TOKEN_FILE", c.TokenFile},
		{"MNO_K3S_KUBECONFIG", c.K3sKubeconfig},
		{"MNO_K3S_TLS_DIR", c.TLSDir},
		{"CP_ADDR", c.Gateway},
	}
	if c.From == FromMyNodeOne {
		// adopt's stand-ins of the control plane's root keys and systemctl.
		vars = append(vars,
			EnvVar{"MNO_ADOPT_IDENTITY", filepath.Join(c.CPRoot, ".ssh", "mynodeone_id_ed25519") + "," + filepath.Join(c.CPRoot, ".ssh", "id_ed25519")},
			EnvVar{"MNO_CP_SYSTEMCTL", c.CPSystemctl})
	}
	for _, n := range c.Nodes {
		p := strings.ToUpper(strings.ReplaceAll(n.Name, "-", "_"))
		vars = append(vars, EnvVar{p + "_ADDR", n.Addr}, EnvVar{p + "_HOST_KEY", n.HostKey})
	}
	return vars
}
