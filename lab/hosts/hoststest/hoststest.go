// Package hoststest starts lab hosts (real OpenSSH sshd, see package hosts) for
// Go tests and stops them in t.Cleanup.
//
// Policy: when the machine cannot run hosts (not root, sshd, ip, sudo or
// overlayfs missing), a test is skipped with a message naming what to install,
// unless the environment has CI=true, where a missing real part is a failure.
// Under CI=true hosts must also get network namespaces (no loopback fallback),
// unless the test asks for hosts.Network itself.
package hoststest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/hosts"
	"golang.org/x/crypto/ssh"
)

// InCI reports whether the environment says CI=true.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Start starts n hosts for the test (see hosts.Start) and stops them when the
// test ends, failing it if Stop fails or leaves anything behind.
func Start(t testing.TB, n int, opts ...hosts.Option) *hosts.Lab {
	t.Helper()
	Require(t)
	if InCI() {
		opts = append([]hosts.Option{hosts.Network(hosts.NetworkNamespaces)}, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := hosts.Start(ctx, n, opts...)
	if err != nil {
		t.Fatalf("starting %d lab hosts: %v", n, err)
	}
	t.Cleanup(func() {
		if err := lab.Stop(); err != nil {
			t.Errorf("stopping lab hosts: %v", err)
		}
	})
	return lab
}

// Require skips the test, or fails it under CI=true, when this machine cannot
// run lab hosts; the message says what to install.
func Require(t testing.TB) {
	t.Helper()
	if err := hosts.Check(); err != nil {
		if InCI() {
			t.Fatalf("lab hosts cannot run here: %v", err)
		}
		t.Skipf("skipping: lab hosts cannot run here (CI=true makes this a failure): %v", err)
	}
}

// Unavailable stops a test that needs something this machine cannot give
// (privileges, network namespaces for a partition): a failure in CI, where
// every real part must be there, a skip elsewhere.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("needed in CI: "+format, args...)
	}
	t.Skipf("skipping (CI=true makes this a failure): "+format, args...)
}

// NewKey returns a fresh ed25519 client key and its authorized_keys line, to
// pass to hosts.AuthorizedKeys.
func NewKey(t testing.TB) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + t.Name()
}

// Dial connects to h as user, checking h's host key strictly, and closes the
// connection when the test ends.
func Dial(t testing.TB, h *hosts.Host, user string, key ssh.Signer) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", h.Endpoint(), h.ClientConfig(user, key))
	if err != nil {
		t.Fatalf("ssh %s@%s (%s): %v", user, h.Name, h.Endpoint(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Run runs a shell command over c and returns its stdout, stderr and exit code
// (-1 if it did not exit normally).
func Run(t testing.TB, c *ssh.Client, command string) (stdout, stderr string, code int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("ssh session: %v", err)
	}
	defer s.Close()
	var o, e strings.Builder
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(command)
	switch err := err.(type) {
	case nil:
		return o.String(), e.String(), 0
	case *ssh.ExitError:
		return o.String(), e.String(), err.ExitStatus()
	default:
		t.Fatalf("ssh %q: %v", command, err)
		return "", "", -1
	}
}
