package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// nsSpec is what a host's thread sets up before it starts sshd.
type nsSpec struct {
	name     string
	netns    string  // "" on loopback
	addr     [4]byte // the host's address on the lab bridge
	overlays []mountSpec
	binds    []string
	sshd     string
	log      *os.File
	// detached: sshd outlives this process (own session, no parent-death signal).
	detached bool
}

// mountSpec is one overlay: lower is overlayfs' colon-separated lowerdir.
type mountSpec struct{ target, lower, upper, work string }

// startHost starts sshd in fresh namespaces. The namespaces are made on a
// locked OS thread that sshd is forked from, so no helper process or shell
// quoting is involved. The thread lives until release is closed: sshd gets
// SIGKILL (its parent-death signal) when the thread ends, and so also when this
// process dies in any way — unless spec.detached, where sshd has its own
// session and no parent-death signal, and outlives both.
//
// Only that thread ever holds the host's namespaces, which is what lets
// callers (test binaries, `mno lab`) need no TestMain or init of their own:
//   - the goroutine never unlocks it, and the runtime ends a thread whose
//     locked goroutine exits instead of reusing it;
//   - a new thread is cloned from the thread that asks for it and would
//     inherit its namespaces, but the runtime has a locked thread's requests
//     served by its template thread, which the process's first LockOSThread
//     starts, before any thread can have changed;
//   - the main thread (m0) is the exception: the runtime cannot end it and
//     parks it for good instead, and /proc/PID/ns and /proc/PID/mountinfo
//     show its namespaces as the whole process's, so the test binary would
//     look like it runs inside the host (TestNamespacesStayOnHostThreads).
//     Any goroutine may run on m0 when the main goroutine blocks, so the
//     locked goroutine checks where it landed and, on m0, hands the host to
//     a goroutine that cannot be on m0 while it holds it.
//
// A package init that locks the main goroutine to m0 would do the same for
// every importer, at the cost of pinning their main goroutines; the hand-over
// costs nothing when the goroutine is elsewhere.
func startHost(spec nsSpec) (cmd *exec.Cmd, release chan<- struct{}, err error) {
	done := make(chan error)
	rel := make(chan struct{})
	host := func() {
		// Never unlocked: the thread carries the host's namespaces and must end
		// with this goroutine rather than run other goroutines.
		c, err := enterAndStart(spec)
		cmd = c
		done <- err
		if err == nil {
			<-rel
		}
	}
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			host()
			return
		}
		// This is the main thread (see above). Keep it until another thread
		// has taken the host; while it is locked here, that one cannot be it.
		taken := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(taken)
			host()
		}()
		<-taken
		runtime.UnlockOSThread()
	}()
	if err := <-done; err != nil {
		return nil, nil, err
	}
	return cmd, rel, nil
}

func enterAndStart(spec nsSpec) (*exec.Cmd, error) {
	fail := func(what string, err error) (*exec.Cmd, error) {
		return nil, fmt.Errorf("hosts: %s: %s: %w", spec.name, what, err)
	}
	if spec.netns != "" {
		fd, err := unix.Open("/run/netns/"+spec.netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail("open netns", err)
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			return fail("enter netns", err)
		}
		if err := configureNet(spec.addr); err != nil {
			return fail("configure eth0", err)
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
		return fail("unshare mount namespace", err)
	}
	if err := unix.Sethostname([]byte(spec.name)); err != nil {
		return fail("sethostname", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make / private", err)
	}
	// Bind sources are cloned before the host's mounts cover them (a source
	// under /tmp or /root is not the host's) or detach their mount (a source on
	// a tmpfs below /run, as `mno lab` has), and the clones are moved into place.
	var sources []int
	defer func() {
		for _, fd := range sources {
			unix.Close(fd)
		}
	}()
	for _, src := range spec.binds {
		fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fail("bind "+src, err)
		}
		sources = append(sources, fd)
	}
	for _, m := range spec.overlays {
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", m.lower, m.upper, m.work)
		if err := unix.Mount("overlay", m.target, "overlay", 0, opts); err != nil {
			return fail("mount overlay on "+m.target, err)
		}
	}
	fresh := []struct{ path, opts string }{
		{"/run", "mode=755"}, {"/tmp", "mode=1777"}, {"/dev/shm", "mode=1777"},
	}
	// The namespace began as a copy of this machine's mounts. Drop those the
	// host must not keep alive: nsfs mounts (/run/netns/* of other hosts and
	// labs, whose namespaces would outlive their deletion) and mounts below
	// the directories about to be covered (other labs' tmpfs). Mounts on
	// those directories themselves stay, covered: bind sources may be there.
	if err := detachMounts(func(mp, fstype string) bool {
		for _, f := range fresh {
			if strings.HasPrefix(mp, f.path+"/") {
				return true
			}
		}
		return fstype == "nsfs"
	}); err != nil {
		return fail("detach mounts", err)
	}
	for _, t := range fresh {
		if err := unix.Mount("tmpfs", t.path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, t.opts); err != nil {
			return fail("mount "+t.path, err)
		}
	}
	for i, src := range spec.binds {
		from := fmt.Sprintf("/proc/self/fd/%d", sources[i])
		if err := makeMountPoint(from, src); err != nil {
			return fail("bind "+src, err)
		}
		if err := unix.MoveMount(sources[i], "", unix.AT_FDCWD, src, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fail("bind "+src, err)
		}
		if err := unix.Mount("", src, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fail("bind "+src+" read-only", err)
		}
	}
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{"/run/sshd", 0o755}, {"/run/lock", 0o777 | fs.ModeSticky}} {
		if err := os.Mkdir(d.path, 0o755); err != nil {
			return fail("mkdir", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fail("chmod", err)
		}
	}
	// Everything else the host sees is this machine's and becomes read-only
	// in it, except the kernel's /proc, /sys and /dev, which stay as the
	// machine has them (sshd writes /proc/self/oom_score_adj and chowns
	// /dev/pts/N; /dev/null is written everywhere).
	writable := []string{"/proc", "/sys", "/dev"}
	for _, m := range spec.overlays {
		writable = append(writable, m.target)
	}
	for _, f := range fresh {
		writable = append(writable, f.path)
	}
	if err := protectMachine(writable); err != nil {
		return fail("make this machine's mounts read-only", err)
	}

	cmd := exec.Command(spec.sshd, "-D", "-e", "-f", "/etc/ssh/sshd_config")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + hostPath}
	cmd.Stdout, cmd.Stderr = spec.log, spec.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if spec.detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return fail("start sshd", err)
	}
	return cmd, nil
}

// detachMounts lazily unmounts every mount of the thread's namespace that drop
// selects, parents before children (a detached parent takes its children).
func detachMounts(drop func(mountPoint, fstype string) bool) error {
	info, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for line := range strings.Lines(string(info)) {
		// id parent major:minor root mount-point options [optional…] - fstype …
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 5 || sep < 0 || sep+1 >= len(f) {
			continue
		}
		if mp := unescapeMountinfo(f[4]); drop(mp, f[sep+1]) {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) < len(points[j]) })
	for _, mp := range points {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("%s: %w", mp, err)
		}
	}
	return nil
}

// unescapeMountinfo undoes mountinfo's octal escapes ("\040" for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// makeMountPoint makes dst a directory or an empty file, like src.
func makeMountPoint(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// configureNet brings up lo and eth0 (with addr/24) in the thread's network
// namespace, with ioctls rather than one `ip` process per host.
func configureNet(addr [4]byte) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	set := func(req uint, v []byte) error {
		ifr, err := unix.NewIfreq("eth0")
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(v); err != nil {
			return err
		}
		return unix.IoctlIfreq(fd, req, ifr)
	}
	if err := set(unix.SIOCSIFADDR, addr[:]); err != nil {
		return err
	}
	if err := set(unix.SIOCSIFNETMASK, []byte{255, 255, 255, 0}); err != nil {
		return err
	}
	for _, name := range []string{"lo", "eth0"} {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return err
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return errors.Join(fmt.Errorf("%s up", name), err)
		}
	}
	return nil
}
