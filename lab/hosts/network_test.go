package hosts_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// banner dials addr and reads sshd's greeting.
func banner(addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 7)
	_, err = c.Read(buf)
	return string(buf), err
}

func TestPartition(t *testing.T) {
	t.Parallel()
	lab := hoststest.Start(t, 2)
	if lab.Network() != hosts.NetworkNamespaces {
		hoststest.Unavailable(t, "partitions need network namespaces; this lab runs on %s", lab.Network())
	}
	a, b := lab.Hosts()[0], lab.Hosts()[1]
	if got, err := banner(a.Endpoint(), 5*time.Second); err != nil || got != "SSH-2.0" {
		t.Fatalf("before partition: %q, %v", got, err)
	}
	if err := lab.Partition(a.Name); err != nil {
		t.Fatal(err)
	}
	_, err := banner(a.Endpoint(), 500*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial to partitioned host: %v, want a timeout", err)
	}
	if got, err := banner(b.Endpoint(), 5*time.Second); err != nil || got != "SSH-2.0" {
		t.Errorf("other host during partition: %q, %v", got, err)
	}
	if err := lab.Heal(a.Name); err != nil {
		t.Fatal(err)
	}
	if got, err := banner(a.Endpoint(), 5*time.Second); err != nil || got != "SSH-2.0" {
		t.Errorf("after heal: %q, %v", got, err)
	}
	if err := lab.Partition("no-such-host"); err == nil {
		t.Errorf("partitioning an unknown host succeeded")
	}
}

// TestLoopback runs hosts the way machines without network namespaces do.
func TestLoopback(t *testing.T) {
	t.Parallel()
	key, authorized := hoststest.NewKey(t)
	lab := hoststest.Start(t, 2, hosts.Network(hosts.NetworkLoopback), hosts.AuthorizedKeys(authorized), hosts.LoginUser("deploy"))
	a, b := lab.Hosts()[0], lab.Hosts()[1]
	if a.Addr != "127.0.0.1" || a.Port == b.Port || a.Netns != "" || lab.Gateway() != "" {
		t.Fatalf("loopback hosts at %s and %s (netns %q)", a.Endpoint(), b.Endpoint(), a.Netns)
	}
	out, _, code := hoststest.Run(t, hoststest.Dial(t, a, "deploy", key), "sudo -n sh -c 'echo loop > /etc/mno-loop; hostname'")
	if code != 0 || out != a.Name+"\n" {
		t.Fatalf("deploy on %s: %q (%d)", a.Name, out, code)
	}
	if got, err := a.ReadFile("/etc/mno-loop"); err != nil || string(got) != "loop\n" {
		t.Errorf("%s: %q, %v", a.Name, got, err)
	}
	if _, err := b.ReadFile("/etc/mno-loop"); !os.IsNotExist(err) {
		t.Errorf("%s sees the file: %v", b.Name, err)
	}
	if err := a.Partition(); err == nil || !strings.Contains(err.Error(), "network namespaces") {
		t.Errorf("Partition on loopback: %v", err)
	}
}

func TestFiftyHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	start := time.Now()
	lab := hoststest.Start(t, 50, hosts.Shims("apt-get"))
	t.Logf("50 hosts (%s) started in %v", lab.Network(), time.Since(start).Round(time.Millisecond))

	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i, h := range lab.Hosts() {
		wg.Go(func() {
			if got, err := banner(h.Endpoint(), 10*time.Second); err != nil || got != "SSH-2.0" {
				errs[i] = errors.Join(errors.New(h.Name+": "+got), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	last := lab.Hosts()[49]
	if err := last.Command(t.Context(), true, "apt-get", "update").Run(); err != nil {
		t.Fatal(err)
	}
	calls, err := last.ShimCalls()
	if err != nil || len(calls) != 1 || calls[0].StdinLen != 0 || calls[0].Stdin != nil ||
		calls[0].StdinSHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("shim calls on %s: %+v, %v", last.Name, calls, err)
	}
	start = time.Now()
	if err := lab.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("50 hosts stopped in %v", time.Since(start).Round(time.Millisecond))
}
