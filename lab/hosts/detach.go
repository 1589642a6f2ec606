package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// StateFile is the name of a detached lab's state file in its Dir.
const StateFile = "state.json"

// labState is what a detached lab persists: enough for Open, in another
// process, to reach its hosts and to remove everything it made.
type labState struct {
	Version   int         `json:"version"`
	Slot      int         `json:"slot"`
	Dir       string      `json:"dir"`
	Network   string      `json:"network"`
	LoginUser string      `json:"login_user,omitempty"`
	Gateway   string      `json:"gateway,omitempty"`
	Hosts     []hostState `json:"hosts"`
	// Links, Netns, Mounts and Routes are what Stop removes besides the
	// hosts' processes and Dir; they are listed for people and tools.
	Links  []string `json:"links,omitempty"`
	Netns  []string `json:"netns,omitempty"`
	Mounts []string `json:"mounts"`
	Routes []string `json:"routes,omitempty"`
}

type hostState struct {
	Name        string   `json:"name"`
	Addr        string   `json:"addr"`
	Port        int      `json:"port"`
	HostKey     string   `json:"host_key"`
	Fingerprint string   `json:"fingerprint"`
	SSHD        proc.Ref `json:"sshd"`
	Dir         string   `json:"dir"`
	Netns       string   `json:"netns,omitempty"`
	Link        string   `json:"link,omitempty"`
	MntNS       string   `json:"mnt_ns"`
	NetNS       string   `json:"net_ns,omitempty"`
}

const stateVersion = 1

// persist writes the state file and marks the slot as held by the hosts.
func (l *Lab) persist() error {
	st := labState{Version: stateVersion, Slot: l.slot.n, Dir: l.dir, Network: l.mode.String(),
		LoginUser: l.cfg.loginUser, Gateway: l.Gateway(), Mounts: []string{l.dir}}
	if l.mode == NetworkNamespaces {
		st.Links, st.Netns = l.network()
		st.Routes = []string{fmt.Sprintf("%s/24 dev %s", ipString(subnetOf(l.slot.n)), bridgeName(l.slot.n)),
			guardRoute}
	}
	var procs []proc.Ref
	for _, h := range l.hosts {
		st.Hosts = append(st.Hosts, hostState{Name: h.Name, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey,
			Fingerprint: h.HostKeyFingerprint, SSHD: h.sshd, Dir: h.Dir, Netns: h.Netns, Link: h.Link,
			MntNS: h.mntNS, NetNS: h.netNS})
		procs = append(procs, h.sshd)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.dir, StateFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	return l.slot.write(slotRecord{PID: os.Getpid(), Dir: l.dir, Detached: true, Procs: procs})
}

// Release lets this process go of a detached lab without stopping it: the
// hosts keep running and keep their slot while they live, and Open finds the
// lab again. Stop still works afterwards.
func (l *Lab) Release() error {
	if !l.cfg.detached {
		return errors.New("hosts: Release needs a lab started with Detached")
	}
	for _, h := range l.hosts {
		if h.release != nil {
			close(h.release)
			h.release = nil
		}
	}
	l.opened = true
	return l.slot.unlock()
}

// unlock lets go of the slot's lock and keeps its record.
func (s *slot) unlock() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Open returns the detached lab whose Dir is dir, as its state file
// describes it, from any process. Its hosts' Command, ReadFile, SetShim and
// the rest work as in the process that started it, and Stop ends the hosts by
// PID and removes their namespaces, links, mounts and directory.
func Open(dir string) (*Lab, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	var st labState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("hosts: %s: %w", filepath.Join(dir, StateFile), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("hosts: %s: state version %d, want %d", filepath.Join(dir, StateFile), st.Version, stateVersion)
	}
	l := &Lab{
		cfg:      config{loginUser: st.LoginUser, noUsers: st.LoginUser == "", detached: true},
		slot:     &slot{n: st.Slot},
		dir:      st.Dir,
		template: filepath.Join(st.Dir, ".template"),
		mode:     NetworkLoopback,
		opened:   true,
	}
	if st.Network == NetworkNamespaces.String() {
		l.mode = NetworkNamespaces
	}
	for i, hs := range st.Hosts {
		h := &Host{Name: hs.Name, Addr: hs.Addr, Port: hs.Port, HostKey: hs.HostKey, HostKeyFingerprint: hs.Fingerprint,
			PID: hs.SSHD.PID, Dir: hs.Dir, Netns: hs.Netns, Link: hs.Link,
			lab: l, index: i, sshd: hs.SSHD, mntNS: hs.MntNS, netNS: hs.NetNS}
		if h.pub, _, _, _, err = ssh.ParseAuthorizedKey([]byte(hs.HostKey)); err != nil {
			return nil, fmt.Errorf("hosts: %s: host key of %s: %w", filepath.Join(dir, StateFile), hs.Name, err)
		}
		l.cfg.names = append(l.cfg.names, hs.Name)
		l.hosts = append(l.hosts, h)
	}
	return l, nil
}

// Running lists the hosts whose sshd still runs.
func (l *Lab) Running() []*Host {
	var out []*Host
	for _, h := range l.hosts {
		if h.running() {
			out = append(out, h)
		}
	}
	return out
}

// netnsInode names the namespace mounted at /run/netns/name as /proc shows
// namespaces ("net:[4026532…]"), or "".
func netnsInode(name string) string {
	if name == "" {
		return ""
	}
	var st syscall.Stat_t
	if syscall.Stat(netnsPath(name), &st) != nil {
		return ""
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// guardRoute is the route every lab adds so that nothing for the lab subnet
// leaks to the real network.
var guardRoute = fmt.Sprintf("unreachable %s metric %d", subnet, unreachableMetric)

// removeGuardRoute deletes the guard route when no lab's bridge is left,
// whichever lab (detached or a test's) goes last.
func removeGuardRoute(ctx context.Context) error {
	unlock, err := lockNetwork()
	if err != nil {
		return err
	}
	defer unlock()
	ents, _ := os.ReadDir("/sys/class/net")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), linkPrefix+"b") {
			return nil // another lab still needs it
		}
	}
	if err := ipBatch(ctx, false, []string{"route del " + guardRoute}); err != nil && !strings.Contains(err.Error(), "No such process") {
		return err
	}
	return nil
}

// lockNetwork serialises adding and removing the guard route across
// processes.
func lockNetwork() (unlock func(), err error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(lockDir, "network.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	if err := flockWait(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("hosts: lock network: %w", err)
	}
	return func() { f.Close() }, nil
}
