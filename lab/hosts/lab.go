package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lab is a set of hosts started together; Stop ends them all.
type Lab struct {
	cfg  config
	slot *slot
	dir  string
	// template is the layer every host's overlays have below its own.
	template string
	mode     NetworkMode
	netErr   error // why the lab fell back to loopback
	hosts    []*Host
	// opened: the lab was started by another process (or released by this
	// one) and is known from its state file (see Open).
	opened bool

	stopOnce sync.Once
	stopErr  error
}

// Start starts n hosts and returns when all of them accept connections. On
// error nothing is left running. Start first removes what labs of dead
// processes left behind (see CleanStale).
func Start(ctx context.Context, n int, opts ...Option) (*Lab, error) {
	cfg := config{prefix: "host", loginUser: "mno", baseDir: os.TempDir(), sshd: "/usr/sbin/sshd"}
	for _, o := range opts {
		o(&cfg)
	}
	if abs, err := filepath.Abs(cfg.baseDir); err == nil {
		cfg.baseDir = abs
	}
	if err := cfg.validate(n); err != nil {
		return nil, err
	}
	// Only what every lab needs; ip missing means loopback (see Network).
	if os.Geteuid() != 0 {
		return nil, errors.New("hosts: must run as root (namespaces, mounts and sshd's privilege separation need it)")
	}
	if !overlayAvailable() {
		return nil, errors.New("hosts: overlayfs is not available (modprobe overlay)")
	}
	version, err := sshdVersion(ctx, cfg.sshd)
	if err != nil {
		return nil, err
	}
	img, err := loadImage(&cfg, version)
	if err != nil {
		return nil, err
	}
	sl, err := sweep(ctx, true, cfg.baseDir)
	if sl == nil {
		return nil, err
	}
	// Errors cleaning other slots do not stop this lab.
	l := &Lab{cfg: cfg, slot: sl}
	ok := false
	defer func() {
		if !ok {
			_ = l.Stop()
		}
	}()
	if l.dir, err = os.MkdirTemp(cfg.baseDir, fmt.Sprintf("mno-lab-%d-", sl.n)); err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	_ = mountTmpfs(l.dir) // a disk works too, only slower
	if err := sl.record(l.dir); err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	l.template = filepath.Join(l.dir, ".template") // no host name starts with "."
	if err := buildTemplate(l.template, img); err != nil {
		return nil, fmt.Errorf("hosts: template layer: %w", err)
	}
	for i, name := range cfg.names {
		h := &Host{Name: name, Dir: filepath.Join(l.dir, name), lab: l, index: i}
		if err := os.Mkdir(h.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
		l.hosts = append(l.hosts, h)
	}

	l.mode = NetworkLoopback
	if cfg.network != NetworkLoopback {
		if err := l.setupNetwork(ctx); err == nil {
			l.mode = NetworkNamespaces
		} else {
			links, namespaces := l.network()
			_ = teardownNetwork(context.Background(), links, namespaces)
			if cfg.network == NetworkNamespaces {
				return nil, err
			}
			l.netErr = err
		}
	} else {
		l.netErr = errors.New("chosen by the caller")
	}
	for i, h := range l.hosts {
		if l.mode == NetworkNamespaces {
			h.Addr, h.Port = ipString(hostIP(sl.n, i)), 22
			h.Netns, h.Link = hostLink(sl.n, i), hostLink(sl.n, i)
		} else {
			h.Addr = "127.0.0.1"
		}
	}

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range l.hosts {
		wg.Go(func() { errs[i] = h.start(ctx, img) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.detached {
		if err := l.persist(); err != nil {
			return nil, err
		}
	}
	ok = true
	return l, nil
}

// Hosts returns the hosts in the order they were named.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Dir is the lab's state directory; each host's Dir is inside it.
func (l *Lab) Dir() string { return l.dir }

// Network says how the hosts are addressed.
func (l *Lab) Network() NetworkMode { return l.mode }

// Gateway is this machine's address on the lab network ("10.213.S.1"), where a
// server the hosts must reach (a kube-apiserver) can listen; "" on loopback.
func (l *Lab) Gateway() string {
	if l.mode != NetworkNamespaces {
		return ""
	}
	return ipString(gatewayIP(l.slot.n))
}

// LoginUser is the user with passwordless sudo on every host.
func (l *Lab) LoginUser() string { return l.cfg.loginUser }

// Partition cuts the named host off the lab network (see Host.Partition).
func (l *Lab) Partition(name string) error {
	h := l.Host(name)
	if h == nil {
		return fmt.Errorf("hosts: no host %q", name)
	}
	return h.Partition()
}

// Heal reconnects the named host.
func (l *Lab) Heal(name string) error {
	h := l.Host(name)
	if h == nil {
		return fmt.Errorf("hosts: no host %q", name)
	}
	return h.Heal()
}

// SetShim sets a shim response on every host (see Host.SetShim).
func (l *Lab) SetShim(key string, r ShimResponse) error {
	var errs []error
	for _, h := range l.hosts {
		errs = append(errs, h.SetShim(key, r))
	}
	return errors.Join(errs...)
}

// Stop kills every process inside the hosts, sshd first by PID, deletes their
// namespaces, links and state directory, and frees the lab's slot. Its error
// names anything that could not be removed. It is safe to call more than once.
func (l *Lab) Stop() error {
	l.stopOnce.Do(func() { l.stopErr = l.stop() })
	return l.stopErr
}

func (l *Lab) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if l.slot.f == nil {
		// Released, or opened: take the slot again, or find it gone.
		if err := l.slot.relock(l.dir, 30*time.Second); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errors.Join(err, unmount(l.dir), os.RemoveAll(l.dir))
			}
			return err
		}
	}
	m := procMatch{mnt: map[string]bool{}, net: map[string]bool{}}
	if l.dir != "" {
		m.dirs = []string{l.dir}
	}
	for _, h := range l.hosts {
		// A namespace ID is only the host's while a process holds it: one
		// of a dead sshd may name another namespace by now.
		alive := h.running()
		if h.cmd != nil {
			_ = h.cmd.Process.Kill()
		} else {
			h.sshd.Kill()
		}
		if h.mntNS != "" && (alive || !l.opened) {
			m.mnt[h.mntNS] = true
		}
		if h.netNS != "" && (alive || !l.opened) {
			m.net[h.netNS] = true
		}
		if id := netnsInode(h.Netns); id != "" && l.opened {
			m.net[id] = true
		}
	}
	killMatching(m)
	var errs []error
	for _, h := range l.hosts {
		errs = append(errs, h.shutdown())
	}
	links, namespaces := l.network()
	errs = append(errs, teardownNetwork(ctx, links, namespaces))
	if l.dir != "" {
		errs = append(errs, unmount(l.dir), os.RemoveAll(l.dir))
	}
	if left := l.leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("hosts: left behind: %s", strings.Join(left, ", ")))
	}
	if l.mode == NetworkNamespaces {
		errs = append(errs, removeGuardRoute(ctx))
	}
	errs = append(errs, l.slot.release())
	return errors.Join(errs...)
}

func (l *Lab) network() (links, namespaces []string) {
	return labNetwork(l.slot.n, len(l.cfg.names))
}

// leftovers lists what of the lab still exists: processes inside its hosts,
// namespaces, links, its directory. It is only meaningful while the lab holds
// its slot (another lab may reuse the names after), and recognises processes
// by the lab directory their mounts name, as namespace IDs are reused.
func (l *Lab) leftovers() []string {
	var out []string
	selfMnt := nsID(os.Getpid(), "mnt")
	if ents, err := os.ReadDir("/proc"); err == nil && l.dir != "" {
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() || nsID(pid, "mnt") == selfMnt || !alive(pid) {
				continue
			}
			info, _ := os.ReadFile("/proc/" + e.Name() + "/mountinfo")
			if bytes.Contains(info, []byte("="+l.dir+"/")) {
				comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
				out = append(out, fmt.Sprintf("process %d (%s)", pid, bytes.TrimSpace(comm)))
			}
		}
	}
	links, namespaces := l.network()
	for _, name := range links {
		if linkExists(name) {
			out = append(out, "link "+name)
		}
	}
	for _, name := range namespaces {
		if netnsExists(name) {
			out = append(out, "netns "+name)
		}
	}
	if _, err := os.Lstat(l.dir); err == nil {
		out = append(out, "dir "+l.dir)
	}
	return out
}
