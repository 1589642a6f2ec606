package hosts

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// Host is one running test host. Its exported fields do not change while it runs.
type Host struct {
	// Name is the host's hostname ("laptop-1").
	Name string
	// Addr is the IP to dial: 10.213.S.I with network namespaces, 127.0.0.1
	// on loopback.
	Addr string
	// Port is sshd's port: 22 with network namespaces, random on loopback.
	Port int
	// HostKey is the host's public key as an authorized-keys line without
	// comment ("ssh-ed25519 AAAA…"); HostKeyFingerprint is its "SHA256:…".
	HostKey            string
	HostKeyFingerprint string
	// PID is sshd's process ID.
	PID int
	// Dir holds the host's state: upper/ (everything the host wrote, per
	// overlaid directory), work/, and sshd.log.
	Dir string
	// Netns is the host's network namespace and Link the machine's end of its
	// veth pair (for `tc qdisc … netem`); both empty on loopback.
	Netns, Link string

	lab    *Lab
	index  int
	pub    ssh.PublicKey
	cmd    *exec.Cmd
	sshd   proc.Ref      // sshd across processes (see Open)
	exited chan struct{} // closed when sshd has been reaped; nil in a lab from Open
	// release ends the thread that holds the host's namespaces.
	release chan<- struct{}
	mntNS   string
	netNS   string
}

// Endpoint is the host's "addr:port".
func (h *Host) Endpoint() string { return net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)) }

// PublicKey is the host's ssh host key.
func (h *Host) PublicKey() ssh.PublicKey { return h.pub }

// KnownHostsLine is the host's line for a known_hosts file.
func (h *Host) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(h.Endpoint())}, h.pub)
}

// ClientConfig is an ssh client configuration for user that accepts this
// host's key and no other.
func (h *Host) ClientConfig(user string, signer ssh.Signer) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(h.pub),
		HostKeyAlgorithms: []string{h.pub.Type()},
		Timeout:           10 * time.Second,
	}
}

// Command runs a process as root inside the host's filesystem (and, if
// enterNet, its network namespace; otherwise it shares this machine's network,
// e.g. to reach a test server on loopback). It starts in "/" with the host's
// PATH, shims first; the caller may change Env, Stdin and the rest before
// starting it. Processes still running at Stop are killed.
func (h *Host) Command(ctx context.Context, enterNet bool, name string, args ...string) *exec.Cmd {
	nsenter, err := lookPath("nsenter")
	if err != nil {
		nsenter = "nsenter"
	}
	argv := []string{"--target", strconv.Itoa(h.PID), "--mount", "--uts"}
	if enterNet && h.Netns != "" {
		argv = append(argv, "--net")
	}
	argv = append(append(argv, "--", name), args...)
	cmd := exec.CommandContext(ctx, nsenter, argv...)
	if !h.running() {
		// Its PID may be another process's by now.
		cmd.Err = fmt.Errorf("hosts: %s is not running", h.Name)
	}
	cmd.Env = []string{"PATH=" + hostPath, "HOME=/root", "USER=root", "LOGNAME=root", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	return cmd
}

// ReadFile reads path as the host sees it.
func (h *Host) ReadFile(path string) ([]byte, error) { return h.readFileIn(path) }

// Stat stats path as the host sees it, following symlinks inside the host.
func (h *Host) Stat(path string) (fs.FileInfo, error) { return h.statIn(path) }

// WriteFile replaces path inside the host atomically, owned by root; the
// directory must exist. Tests use it to plant files a playbook expects.
func (h *Host) WriteFile(path string, data []byte, perm fs.FileMode) error {
	return h.writeFileIn(path, data, perm)
}

// Partition cuts the host off the lab network: packets to and from it are
// dropped, so dials time out and open connections stall until Heal.
func (h *Host) Partition() error { return h.setLink("down") }

// Heal undoes Partition.
func (h *Host) Heal() error { return h.setLink("up") }

func (h *Host) setLink(state string) error {
	if h.Link == "" {
		return fmt.Errorf("hosts: %s: partitions need network namespaces (lab runs on loopback: %v)", h.Name, h.lab.netErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return setLink(ctx, h.Link, state)
}

func (h *Host) running() bool {
	if h.exited == nil {
		return h.lab != nil && h.lab.opened && h.sshd.Alive()
	}
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}
