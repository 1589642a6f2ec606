package hosts

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// NetworkMode says how hosts get their addresses.
type NetworkMode int

const (
	// NetworkAuto uses network namespaces when they can be made and falls back
	// to loopback ports otherwise.
	NetworkAuto NetworkMode = iota
	// NetworkNamespaces requires a network namespace per host; Start fails
	// without one.
	NetworkNamespaces
	// NetworkLoopback puts every host on 127.0.0.1 with its own random port.
	// Partition is not available.
	NetworkLoopback
)

func (m NetworkMode) String() string {
	switch m {
	case NetworkAuto:
		return "auto"
	case NetworkNamespaces:
		return "netns"
	case NetworkLoopback:
		return "loopback"
	}
	return fmt.Sprintf("NetworkMode(%d)", int(m))
}

// Option configures Start.
type Option func(*config)

type config struct {
	names          []string
	prefix         string
	authorizedKeys []string
	loginUser      string
	shims          []string
	fullStdin      bool
	network        NetworkMode
	binds          []string
	baseDir        string
	sshd           string
	noUsers        bool
	detached       bool
}

// NamePrefix names the hosts prefix-1 … prefix-n (default "host").
func NamePrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// Names gives every host its name; there must be exactly n of them.
func Names(names ...string) Option {
	return func(c *config) { c.names = append([]string(nil), names...) }
}

// AuthorizedKeys sets the authorized_keys lines ("ssh-ed25519 AAAA… comment")
// of root, the login user and nosudo on every host.
func AuthorizedKeys(lines ...string) Option {
	return func(c *config) { c.authorizedKeys = append(c.authorizedKeys, lines...) }
}

// LoginUser names the user with passwordless sudo (default "mno").
func LoginUser(name string) Option { return func(c *config) { c.loginUser = name } }

// Shims replaces the named commands by recording shims on every host, so a
// playbook's `apt-get install` or `systemctl restart` is recorded, not run.
func Shims(names ...string) Option {
	return func(c *config) { c.shims = append(c.shims, names...) }
}

// FullShimStdin makes shims record the whole stdin they were given (ShimCall.Stdin)
// instead of its sha256 and length only.
func FullShimStdin() Option { return func(c *config) { c.fullStdin = true } }

// NoUsers makes hosts like fresh machines: root is the only account (with
// the AuthorizedKeys, if any), there is no login user and no "nosudo", so a
// bootstrap creates the user it needs. LoginUser then returns "".
func NoUsers() Option { return func(c *config) { c.noUsers = true } }

// Detached makes the hosts outlive this process, for `mno lab up`: sshd gets
// no parent-death signal, runs in its own session and logs straight to its
// file; Start writes the lab's state (PIDs, namespaces, links, mounts) to
// Dir()/state.json and marks its slot as held by the hosts while they live.
// Release lets go of the lab; Open, in any process, finds it again and its
// Stop removes everything, as for an attached lab.
func Detached() Option { return func(c *config) { c.detached = true } }

// Network chooses how hosts are addressed (default NetworkAuto).
func Network(m NetworkMode) Option { return func(c *config) { c.network = m } }

// Bind makes paths of this machine (files or directories, e.g. a Traefik
// binary built by a test under /tmp) visible read-only at the same path inside
// every host.
func Bind(paths ...string) Option {
	return func(c *config) { c.binds = append(c.binds, paths...) }
}

// BaseDir sets where the lab's state directory is made (default os.TempDir()).
// It must not lie under a directory the hosts overlay (/etc, /var, …).
func BaseDir(dir string) Option { return func(c *config) { c.baseDir = dir } }

// SSHD sets the sshd binary (default /usr/sbin/sshd).
func SSHD(path string) Option { return func(c *config) { c.sshd = path } }

var (
	// Compiled on first use, not at every start of mno (bounded
	// repetitions compile to large programs).
	hostnameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`) })
	userRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`) })
)

// maxHosts is the number of addresses in a lab's /24 after the bridge's.
const maxHosts = 253

func (c *config) validate(n int) error {
	if n < 1 || n > maxHosts {
		return fmt.Errorf("hosts: n = %d, want 1..%d", n, maxHosts)
	}
	if c.names == nil {
		for i := range n {
			c.names = append(c.names, fmt.Sprintf("%s-%d", c.prefix, i+1))
		}
	}
	if len(c.names) != n {
		return fmt.Errorf("hosts: %d names for %d hosts", len(c.names), n)
	}
	seen := map[string]bool{}
	for _, name := range c.names {
		if !hostnameRE().MatchString(name) {
			return fmt.Errorf("hosts: bad host name %q (want lower-case letters, digits and '-')", name)
		}
		if seen[name] {
			return fmt.Errorf("hosts: duplicate host name %q", name)
		}
		seen[name] = true
	}
	if c.noUsers {
		c.loginUser = ""
	} else if !userRE().MatchString(c.loginUser) || c.loginUser == "root" || c.loginUser == noSudoUser {
		return fmt.Errorf("hosts: bad login user %q", c.loginUser)
	}
	for _, line := range c.authorizedKeys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
			return fmt.Errorf("hosts: authorized key %q: %w", line, err)
		}
	}
	for _, s := range c.shims {
		if err := checkShimName(s); err != nil {
			return err
		}
	}
	for i, b := range c.binds {
		if !filepath.IsAbs(b) {
			return fmt.Errorf("hosts: bind %q is not absolute", b)
		}
		c.binds[i] = filepath.Clean(b)
	}
	if strings.ContainsAny(c.baseDir, ",:\\ \t\n") {
		return fmt.Errorf("hosts: base dir %q holds a character overlayfs options cannot carry", c.baseDir)
	}
	for _, o := range overlayDirs {
		if within(c.baseDir, o) {
			return fmt.Errorf("hosts: base dir %s lies under %s, which the hosts overlay; use BaseDir or TMPDIR=/tmp", c.baseDir, o)
		}
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
