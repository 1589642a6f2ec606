package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mno-sh/mno/bootstrap"
	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/internal/proc"
	"github.com/mno-sh/mno/lab/kubeapi"
)

// APIPort is the API server's port on the gateway, k3s's: the address in
// cluster-info and in every kubeconfig and agent configuration the playbooks
// write, https://<control-plane-ip>:6443, reaches it from the nodes.
const APIPort = 6443

// shims replace, on every node, the commands that cannot run in a lab.
var shims = []string{"apt-get", "docker", "ufw", "systemctl", "tailscale"}

// Up starts a lab and returns when everything in it answers. On error nothing
// is left running and an anonymous lab's directory is as it was; a named
// lab's directory is removed.
func Up(ctx context.Context, o Options) (_ *Cluster, err error) {
	start := time.Now()
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	if o.VPS < 0 || o.Workers < 0 || o.Laptops < 0 || o.VPS+o.Workers+o.Laptops == 0 {
		return nil, fmt.Errorf("a lab needs at least one node (got --vps %d --workers %d --laptops %d)", o.VPS, o.Workers, o.Laptops)
	}
	if o.ClusterName == "" {
		o.ClusterName = "home"
	}
	if o.From != "" && o.From != FromMyNodeOne {
		return nil, fmt.Errorf("lab: --from %q: the lab starts from fresh machines, or from %q", o.From, FromMyNodeOne)
	}
	if o.Exe == "" {
		return nil, errors.New("lab: Options.Exe (an mno binary) is required")
	}
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	if err := hosts.Check(); err != nil {
		return nil, err
	}

	c := &Cluster{State: State{Version: stateVersion, Name: o.Name, Started: start.UTC(), Detached: o.Name != "", ClusterName: o.ClusterName, From: o.From}}
	if o.Name != "" {
		if err := CheckName(o.Name); err != nil {
			return nil, err
		}
		c.Dir = DirOf(o.Name)
		unlock, err := lockName(o.Name)
		if err != nil {
			return nil, err
		}
		defer unlock()
		if old, err := openDir(c.Dir); err == nil {
			if old.Running() {
				return nil, fmt.Errorf("lab %q is %w: `mno lab status` shows it, `mno lab down --name %s` stops it", o.Name, ErrExists, o.Name)
			}
			fmt.Fprintf(progress, "lab %q is not running any more (a reboot? a crash?): removing what is left of it first\n", o.Name)
			if err := old.stop(); err != nil {
				return nil, fmt.Errorf("removing the old lab %q: %w", o.Name, err)
			}
		} else if !errors.Is(err, ErrNoLab) {
			return nil, err
		}
		_ = unmount(c.Dir) // of an Up that died before it saved anything
		if err := os.RemoveAll(c.Dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return nil, err
		}
	} else {
		if o.Dir == "" {
			return nil, errors.New("lab: an anonymous lab needs Options.Dir")
		}
		if c.Dir, err = filepath.Abs(o.Dir); err != nil {
			return nil, err
		}
	}
	if mountTmpfs(c.Dir) == nil { // else the files go to the disk: slower, no less right
		c.Mounts = []string{c.Dir}
	}
	defer func() {
		if err != nil {
			if serr := c.stop(); serr != nil {
				err = errors.Join(err, fmt.Errorf("cleaning up: %w", serr))
			}
		}
	}()

	tl, err := tools(ctx, o, progress)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tl.stopBackground()
		}
	}()
	apiBins := tl.api
	c.Traefik, c.CacheDir = tl.traefik, tl.dir
	c.TraefikBuilding = tl.background != nil
	c.Exe = filepath.Join(c.Dir, "bin", "mno")
	if err := copyFile(o.Exe, c.Exe, 0o755); err != nil {
		return nil, fmt.Errorf("copying mno into the lab: %w", err)
	}

	var names []string
	for _, k := range []struct {
		kind string
		n    int
	}{{KindVPS, o.VPS}, {KindWorker, o.Workers}, {KindLaptop, o.Laptops}} {
		for i := 1; i <= k.n; i++ {
			names = append(names, fmt.Sprintf("%s-%d", k.kind, i))
		}
	}
	fmt.Fprintf(progress, "starting %d node(s): %s\n", len(names), strings.Join(names, ", "))
	c.HostsDir = filepath.Join(c.Dir, "hosts")
	if err := os.MkdirAll(c.HostsDir, 0o700); err != nil {
		return nil, err
	}
	binds := []string{c.Exe}
	if o.VPS > 0 {
		// Traefik's directory, not the file: the binary may appear later.
		dirs, err := tl.toolDirs()
		if err != nil {
			return nil, err
		}
		binds = append(binds, dirs...)
	}
	hopts := []hosts.Option{hosts.Names(names...), hosts.NoUsers(), hosts.Shims(shims...),
		hosts.Bind(binds...), hosts.BaseDir(c.HostsDir), hosts.Network(hosts.NetworkNamespaces)}
	if c.Detached {
		hopts = append(hopts, hosts.Detached())
	}
	if c.hosts, err = hosts.Start(ctx, len(names), hopts...); err != nil {
		return nil, err
	}
	c.HostsDir = c.hosts.Dir()
	c.Gateway = c.hosts.Gateway()
	for _, h := range c.hosts.Hosts() {
		kind, _, _ := strings.Cut(h.Name, "-")
		c.Nodes = append(c.Nodes, Node{Name: h.Name, Kind: kind, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey, Fingerprint: h.HostKeyFingerprint})
	}
	if err := c.setShims(); err != nil {
		return nil, err
	}
	// From here on Stop, from any process, finds everything, the API server's
	// processes even if this one dies while they start.
	c.APIDir = filepath.Join(c.Dir, "kubeapi")
	if err := c.save(); err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "starting kube-apiserver on %s:%d\n", c.Gateway, APIPort)
	if err := c.startAPI(ctx, apiBins); err != nil {
		return nil, err
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	c.Home = filepath.Join(c.Dir, "home")
	c.Identity = filepath.Join(c.Home, "id_ed25519")
	if _, _, err := bootstrap.EnsureIdentity(c.Home, c.Identity); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "creating the ConfigMaps (init playbook, cluster %s)\n", o.ClusterName)
	if err := c.initCluster(ctx); err != nil {
		return nil, err
	}
	if err := c.startDemo(ctx); err != nil {
		return nil, err
	}
	if o.From == FromMyNodeOne {
		fmt.Fprintf(progress, "setting the nodes up as MyNodeOne does (users, keys, ~/traefik, ConfigMaps, sync controller)\n")
		if err := c.seedMyNodeOne(ctx); err != nil {
			return nil, fmt.Errorf("from mynodeone: %w", err)
		}
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if c.Detached {
		if err := c.hosts.Release(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Running reports whether the lab's nodes and API server all run.
func (c *Cluster) Running() bool {
	s := c.Status()
	return s.Nodes > 0 && s.NodesRunning == s.Nodes && s.API
}

// Stop ends everything the lab started — processes in the nodes, the nodes,
// the API server, the demo service — and removes its namespaces, links,
// routes, mounts and directory. It works from any process.
func (c *Cluster) Stop() error {
	if c.Name != "" {
		unlock, err := lockName(c.Name)
		if err != nil {
			return err
		}
		defer unlock()
	}
	return c.stop()
}

func (c *Cluster) stop() error {
	var errs []error
	if c.api == nil && c.APIDir != "" {
		if api, err := kubeapi.Open(c.APIDir); err == nil {
			c.api = api
		}
	}
	if c.api != nil {
		errs = append(errs, c.api.Stop())
	}
	if c.APIDir != "" {
		// etcd or kube-apiserver of a start that was cut short, before the
		// server recorded them: they name the directory on their command line.
		killNaming(c.APIDir+"/", "etcd-", "kube-apiserver-")
	}
	c.Demo.Proc.Kill() // also ended with the node it runs in
	if c.hosts == nil && c.HostsDir != "" {
		if h, err := hosts.Open(c.HostsDir); err == nil {
			c.hosts = h
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if c.hosts != nil {
		if err := c.hosts.Stop(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, m := range c.Mounts {
		errs = append(errs, unmount(m)) // and everything on it with it
	}
	if c.Name != "" {
		errs = append(errs, os.RemoveAll(c.Dir))
	} else if len(c.Mounts) == 0 && c.Exe != "" {
		// An anonymous lab's directory is its caller's: remove what Up put there.
		for _, p := range []string{filepath.Dir(c.Exe), c.APIDir, c.Home, filepath.Dir(c.TokenFile), filepath.Join(c.Dir, "hosts"),
			filepath.Join(c.Dir, "demo.log"), filepath.Join(c.Dir, stateFile), c.CPRoot} {
			if p != "" && p != "." && p != c.Dir {
				errs = append(errs, os.RemoveAll(p))
			}
		}
	}
	return errors.Join(errs...)
}

// killNaming kills the processes of the programs whose names start with one of
// programs and whose command line contains s.
func killNaming(s string, programs ...string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, _ := os.Readlink("/proc/" + e.Name() + "/exe")
		ours := false
		for _, p := range programs {
			ours = ours || strings.HasPrefix(filepath.Base(exe), p)
		}
		if cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); ours && err == nil && bytes.Contains(cmdline, []byte(s)) {
			if ref, err := proc.RefOf(pid); err == nil {
				_ = ref.Stop(5 * time.Second)
			}
		}
	}
}

// lockName serialises up and down of one named lab across processes.
func lockName(name string) (unlock func(), err error) {
	if err := os.MkdirAll(Root, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(Root, "."+name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func copyFile(from, to string, mode os.FileMode) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// logTail returns the last lines of what buf holds, for error messages.
func logTail(buf *bytes.Buffer, lines int) string {
	all := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
