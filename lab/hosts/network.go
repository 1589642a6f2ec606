package hosts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Every name this package gives a namespace or link starts with linkPrefix and
// carries the lab's slot, so CleanStale can tell whose it is. They fit the
// kernel's 15 bytes: "mnolab-254-252".
const (
	linkPrefix = "mnolab-"
	// subnet is a private /16 used only inside namespaces this package makes;
	// a lab gets 10.213.SLOT.0/24.
	subnet = "10.213.0.0/16"
	// unreachableMetric ranks the guard route below any route someone else
	// may have for the same prefix.
	unreachableMetric = 10213
	// hostPath is PATH inside the hosts, shims first.
	hostPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

func bridgeName(slot int) string   { return fmt.Sprintf("%sb%d", linkPrefix, slot) }
func hostLink(slot, i int) string  { return fmt.Sprintf("%s%d-%d", linkPrefix, slot, i) }
func hostIP(slot, i int) [4]byte   { return [4]byte{10, 213, byte(slot), byte(i + 2)} }
func gatewayIP(slot int) [4]byte   { return [4]byte{10, 213, byte(slot), 1} }
func subnetOf(slot int) [4]byte    { return [4]byte{10, 213, byte(slot), 0} }
func hostMAC(slot, i int) string   { return fmt.Sprintf("02:6d:6e:%02x:00:%02x", slot, i+2) }
func ipString(ip [4]byte) string   { return fmt.Sprintf("%d.%d.%d.%d", ip[0], ip[1], ip[2], ip[3]) }
func netnsPath(name string) string { return "/run/netns/" + name }
func linkExists(name string) bool  { _, err := os.Lstat("/sys/class/net/" + name); return err == nil }
func netnsExists(name string) bool { _, err := os.Lstat(netnsPath(name)); return err == nil }

// setupNetwork makes the lab's bridge and, per host, a namespace and a veth
// pair whose inner end is eth0, in one `ip -batch`. The neighbour entries are
// permanent, so a partitioned host's packets vanish (a dial times out) instead
// of failing ARP with "no route to host".
func (l *Lab) setupNetwork(ctx context.Context) error {
	br := bridgeName(l.slot.n)
	lines := []string{
		"link add name " + br + " type bridge",
		fmt.Sprintf("addr add %s/24 dev %s", ipString(gatewayIP(l.slot.n)), br),
		"link set " + br + " up",
		"route replace " + guardRoute,
	}
	for i := range l.hosts {
		name, mac := hostLink(l.slot.n, i), hostMAC(l.slot.n, i)
		lines = append(lines,
			"netns add "+name,
			fmt.Sprintf("link add %s type veth peer name eth0 address %s netns %s", name, mac, name),
			fmt.Sprintf("link set %s master %s up", name, br),
			fmt.Sprintf("neigh replace %s lladdr %s dev %s nud permanent", ipString(hostIP(l.slot.n, i)), mac, br),
		)
	}
	unlock, err := lockNetwork()
	if err != nil {
		return err
	}
	defer unlock()
	return ipBatch(ctx, false, lines)
}

// teardownNetwork deletes the lab's links and namespaces that exist. Deleting
// a namespace destroys its veth pair, and the kernel does that for many
// namespaces at once, far faster than one `link del` after another; links
// still there after a while are deleted one by one.
func teardownNetwork(ctx context.Context, links, namespaces []string) error {
	var lines []string
	for _, l := range links {
		if strings.HasPrefix(l, linkPrefix+"b") && linkExists(l) {
			lines = append(lines, "link del "+l)
		}
	}
	for _, n := range namespaces {
		if netnsExists(n) {
			lines = append(lines, "netns del "+n)
		}
	}
	var err error
	if len(lines) > 0 {
		err = ipBatch(ctx, true, lines)
	}
	lines = nil
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		lines = lines[:0]
		for _, l := range links {
			if linkExists(l) {
				lines = append(lines, "link del "+l)
			}
		}
		if len(lines) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if len(lines) > 0 {
		err = errors.Join(err, ipBatch(ctx, true, lines))
	}
	return err
}

// labNetwork names every link and namespace a lab of n hosts in slot may have,
// veths before the bridge.
func labNetwork(slot, n int) (links, namespaces []string) {
	for i := range n {
		links = append(links, hostLink(slot, i))
		namespaces = append(namespaces, hostLink(slot, i))
	}
	return append(links, bridgeName(slot)), namespaces
}

func ipBatch(ctx context.Context, force bool, lines []string) error {
	ip, err := lookPath("ip")
	if err != nil {
		return err
	}
	args := []string{"-batch", "-"}
	if force {
		args = append([]string{"-force"}, args...)
	}
	cmd := exec.CommandContext(ctx, ip, args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hosts: ip -batch: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setLink brings a host's outer veth up or down.
func setLink(ctx context.Context, link, state string) error {
	return ipBatch(ctx, false, []string{"link set " + link + " " + state})
}

// lookPath finds a system binary even when PATH lacks the sbin directories.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("hosts: %s not found: %w", name, errors.ErrUnsupported)
}
