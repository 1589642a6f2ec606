package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/internal/proc"
	"github.com/mno-sh/mno/lab/kubeapi"
)

// Root holds the named labs, one directory each. It is under /run: a lab does
// not survive a reboot, and the nodes (whose /run is their own) cannot see it.
const Root = "/run/mno-lab/labs"

// stateFile is the lab's own state in its directory.
const stateFile = "lab.json"

// Errors callers tell apart.
var (
	// ErrNotRoot: labs need root (namespaces, mounts, sshd's privilege separation).
	ErrNotRoot = errors.New("mno lab needs root: it makes network namespaces (CAP_NET_ADMIN), mounts and sshd processes; run it as root (sudo)")
	// ErrExists: a lab of that name is up.
	ErrExists = errors.New("already up")
	// ErrNoLab: no lab of that name.
	ErrNoLab = errors.New("no such lab")
)

// Node kinds, which are also the prefixes of node names.
const (
	KindVPS    = "vps"
	KindWorker = "worker"
	KindLaptop = "laptop"
)

// Options configure Up.
type Options struct {
	// Name registers the lab under Root/Name, detached; "" makes an
	// anonymous lab in Dir that dies with this process (mno test).
	Name string
	// Dir is an anonymous lab's directory, which it mounts a tmpfs on while it
	// runs (see TempDir).
	Dir string
	// VPS, Workers and Laptops count the nodes of each kind.
	VPS, Workers, Laptops int
	// ClusterName is cluster-info's cluster-name (and domain) for init;
	// default "home", the walk-through's.
	ClusterName string
	// Exe is an mno binary: nodes run its `mno lab agent` and `mno lab
	// backend`. It is copied into the lab.
	Exe string
	// Progress receives progress lines (building the helper binaries on first
	// use, each step); nil discards them.
	Progress io.Writer
	// CacheDir is where the helper binaries are built; "" is the default
	// toolcache directory (~/.cache/mno).
	CacheDir string
	// NoBuild fails instead of building missing helper binaries (tests).
	NoBuild bool
	// From is the starting point: "" for fresh machines, FromMyNodeOne for a
	// cluster MyNodeOne set up (its users, keys, Traefik, ConfigMaps and
	// sync controller), which `mno run adopt` takes over.
	From string
}

// Node is one node of a lab, as Env and scenarios see it.
type Node struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Addr        string `json:"addr"`
	Port        int    `json:"port"`
	HostKey     string `json:"host_key"`
	Fingerprint string `json:"fingerprint"`
}

// Demo is the lab's demo HTTP service.
type Demo struct {
	Name string   `json:"name"` // its service-registry entry and subdomain
	Node string   `json:"node"`
	Addr string   `json:"addr"`
	Port int      `json:"port"`
	Proc proc.Ref `json:"proc"`
}

// State is what a lab records in its directory; everything a later process
// needs to use the lab and to end it.
type State struct {
	Version     int       `json:"version"`
	Name        string    `json:"name,omitempty"`
	Dir         string    `json:"dir"`
	Started     time.Time `json:"started"`
	Detached    bool      `json:"detached"`
	ClusterName string    `json:"cluster_name"`
	// Gateway is this machine's address on the lab network: where the API
	// server listens and where nodes see the control plane connect from.
	Gateway string `json:"gateway"`
	Nodes   []Node `json:"nodes"`
	// HostsDir is the hosts' directory (lab/hosts), APIDir the server's.
	HostsDir string `json:"hosts_dir"`
	APIDir   string `json:"api_dir"`
	// APIServer is the API server's URL; Kubeconfig the admin's.
	APIServer  string `json:"api_server"`
	Kubeconfig string `json:"kubeconfig"`
	// Home is the lab's MNO_HOME, Identity its control plane key.
	Home     string `json:"home"`
	Identity string `json:"identity"`
	// TokenFile and K3sKubeconfig stand in for the k3s server's files.
	TokenFile     string `json:"token_file"`
	K3sKubeconfig string `json:"k3s_kubeconfig"`
	// TLSDir stands in for k3s's server/tls: the client CA that signs the
	// laptops' certificates ($MNO_K3S_TLS_DIR).
	TLSDir string `json:"tls_dir"`
	// Exe is the lab's copy of mno, Traefik the Traefik binary; both are
	// visible at the same paths inside the nodes.
	Exe     string `json:"exe"`
	Traefik string `json:"traefik"`
	// CacheDir is the helper binaries' cache; TraefikBuilding says that Up
	// left Traefik building in the background (see WaitForTool).
	CacheDir        string `json:"cache_dir,omitempty"`
	TraefikBuilding bool   `json:"traefik_building,omitempty"`
	Demo            Demo   `json:"demo"`
	// From is the starting point (Options.From). A lab from MyNodeOne has
	// the control plane's root home stand-in CPRoot (.ssh with MyNodeOne's
	// keys, systemd with its unit) and CPSystemctl, the control plane's
	// systemctl stand-in.
	From        string `json:"from,omitempty"`
	CPRoot      string `json:"cp_root,omitempty"`
	CPSystemctl string `json:"cp_systemctl,omitempty"`
	// Mounts are this machine's mounts the lab made: a tmpfs on Dir, which
	// holds all of the above (the nodes' own are the hosts').
	Mounts []string `json:"mounts,omitempty"`
}

const stateVersion = 1

// Cluster is a running lab.
type Cluster struct {
	State
	hosts *hosts.Lab
	api   *kubeapi.Server
}

// Compiled on first use: a package-level regexp is compiled at every start
// of mno, whatever the command (bounded repetitions make large programs).
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`) })

// CheckName reports whether name can name a lab.
func CheckName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("lab name %q: want lower-case letters, digits and '-' (at most 32)", name)
	}
	return nil
}

// DirOf is the directory of the lab called name.
func DirOf(name string) string { return filepath.Join(Root, name) }

// Open returns the named lab, from any process.
func Open(name string) (*Cluster, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return openDir(DirOf(name))
}

func openDir(dir string) (*Cluster, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %q", ErrNoLab, filepath.Base(dir))
	}
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	if err := json.Unmarshal(data, &c.State); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	if c.Version != stateVersion {
		return nil, fmt.Errorf("%s: state version %d, want %d (stop it with the mno that started it)", filepath.Join(dir, stateFile), c.Version, stateVersion)
	}
	return c, nil
}

// List returns the named labs, sorted by name.
func List() ([]*Cluster, error) {
	ents, err := os.ReadDir(Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Cluster
	for _, e := range ents {
		if !e.IsDir() || CheckName(e.Name()) != nil {
			continue
		}
		if c, err := openDir(filepath.Join(Root, e.Name())); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c.State, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, stateFile), append(data, '\n'), 0o600)
}

// Hosts returns the lab's hosts (lab/hosts), opening them from their state
// if this process did not start them.
func (c *Cluster) Hosts() (*hosts.Lab, error) {
	if c.hosts == nil {
		h, err := hosts.Open(c.HostsDir)
		if err != nil {
			return nil, err
		}
		c.hosts = h
	}
	return c.hosts, nil
}

// Node returns the node called name.
func (c *Cluster) Node(name string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// NodeNames lists the nodes' names.
func (c *Cluster) NodeNames() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Host returns the running host of node name.
func (c *Cluster) Host(name string) (*hosts.Host, error) {
	hl, err := c.Hosts()
	if err != nil {
		return nil, err
	}
	h := hl.Host(name)
	if h == nil {
		return nil, fmt.Errorf("lab %s has no node %q (nodes: %s)", c.label(), name, strings.Join(c.NodeNames(), ", "))
	}
	return h, nil
}

func (c *Cluster) label() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Dir
}

// Exec runs argv as root inside node name (its mount, UTS and network
// namespaces), like `docker exec`, and returns its exit code.
func (c *Cluster) Exec(ctx context.Context, name string, stdin io.Reader, stdout, stderr io.Writer, env []string, argv ...string) (int, error) {
	h, err := c.Host(name)
	if err != nil {
		return -1, err
	}
	if len(argv) == 0 {
		argv = []string{"sh"}
	}
	cmd := h.Command(ctx, true, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	if cmd.ProcessState != nil {
		if code := cmd.ProcessState.ExitCode(); code >= 0 {
			return code, nil
		}
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
