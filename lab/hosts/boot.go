package hosts

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// start generates the host's key, fills its upper layers and boots its sshd.
func (h *Host) start(ctx context.Context, img *image) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if h.pub, err = ssh.NewPublicKey(pub); err != nil {
		return err
	}
	h.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.pub)))
	h.HostKeyFingerprint = ssh.FingerprintSHA256(h.pub)
	block, err := ssh.MarshalPrivateKey(priv, "root@"+h.Name)
	if err != nil {
		return err
	}
	if h.Netns == "" {
		if h.Port, err = freePort(); err != nil {
			return err
		}
	}
	if err := populate(h, img, pem.EncodeToMemory(block)); err != nil {
		return fmt.Errorf("hosts: %s: %w", h.Name, err)
	}
	for attempt := 1; ; attempt++ {
		err := h.boot(ctx, img)
		if err == nil || h.Netns != "" || attempt == 5 || !strings.Contains(err.Error(), "Address already in use") {
			return err
		}
		// Another process took the loopback port between freePort and sshd.
		if h.Port, err = freePort(); err != nil {
			return err
		}
		cfg := filepath.Join(h.Dir, "upper", "etc", "ssh", "sshd_config")
		if err := os.WriteFile(cfg, sshdConfig(h, img), 0o644); err != nil {
			return err
		}
	}
}

// boot starts sshd in the host's namespaces and waits until it listens.
func (h *Host) boot(ctx context.Context, img *image) error {
	logPath := filepath.Join(h.Dir, "sshd.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	listening, copied, stopWatch := make(chan struct{}), make(chan struct{}), make(chan struct{})
	defer close(stopWatch)
	logw := logf
	if h.lab.cfg.detached {
		// sshd outlives this process, so it writes its log file itself rather
		// than a pipe whose reader dies with us; the file is polled instead.
		go watchLog(logPath, listening, stopWatch)
		close(copied)
	} else {
		// sshd logs to a pipe that copyLog drains into sshd.log, watching for the
		// line sshd prints once it listens: no polling while 50 sshds start.
		pr, pw, err := os.Pipe()
		if err != nil {
			logf.Close()
			return err
		}
		go func() {
			copyLog(pr, logf, listening)
			close(copied)
		}()
		logw = pw
	}
	spec := nsSpec{name: h.Name, netns: h.Netns, binds: h.lab.cfg.binds, sshd: h.lab.cfg.sshd, log: logw, detached: h.lab.cfg.detached}
	if h.Netns != "" {
		spec.addr = hostIP(h.lab.slot.n, h.index)
	}
	for _, o := range img.overlays {
		lower := filepath.Join(h.lab.template, o.name)
		if !o.fresh {
			lower += ":" + o.path
		}
		spec.overlays = append(spec.overlays, mountSpec{
			target: o.path,
			lower:  lower,
			upper:  filepath.Join(h.Dir, "upper", o.name),
			work:   filepath.Join(h.Dir, "work", o.name),
		})
	}
	cmd, release, err := startHost(spec)
	logw.Close() // sshd has its own descriptor
	if err != nil {
		return err
	}
	h.cmd, h.release, h.PID = cmd, release, cmd.Process.Pid
	h.sshd, _ = proc.RefOf(h.PID)
	h.exited = make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(h.exited)
	}()
	h.mntNS = nsID(h.PID, "mnt")
	if h.Netns != "" {
		h.netNS = nsID(h.PID, "net")
	}
	select {
	case <-listening:
		return nil
	case <-h.exited:
		_ = h.shutdown()
		select { // the log's last lines say why
		case <-copied:
		case <-time.After(time.Second):
		}
		return fmt.Errorf("hosts: %s: sshd exited (%v): %s", h.Name, waitErr, logTail(logPath))
	case <-ctx.Done():
		_ = h.cmd.Process.Kill()
		_ = h.shutdown()
		return fmt.Errorf("hosts: %s: waiting for sshd: %w", h.Name, ctx.Err())
	}
}

// watchLog closes listening once the log file at p says sshd listens, or
// gives up when stop is closed.
func watchLog(p string, listening chan<- struct{}, stop <-chan struct{}) {
	for {
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte("Server listening on ")) {
			close(listening)
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// copyLog copies sshd's log into logf until sshd and its children have all
// closed it, and closes listening when sshd says it listens.
func copyLog(r, logf *os.File, listening chan<- struct{}) {
	defer r.Close()
	defer logf.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		_, _ = logf.WriteString(line)
		if listening != nil && strings.HasPrefix(line, "Server listening on ") {
			close(listening)
			listening = nil
		}
		if err != nil {
			return
		}
	}
}

// shutdown ends the host's thread and waits for sshd, which the caller killed.
func (h *Host) shutdown() error {
	if h.release == nil {
		return nil
	}
	close(h.release)
	h.release = nil
	select {
	case <-h.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("hosts: %s: sshd (pid %d) did not exit", h.Name, h.PID)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func logTail(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 2048 {
		_, _ = f.Seek(-2048, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

var sshdVersionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`) })

// sshdVersion asks sshd for its version; options differ between releases.
func sshdVersion(ctx context.Context, sshd string) ([2]int, error) {
	if _, err := os.Stat(sshd); err != nil {
		return [2]int{}, fmt.Errorf("hosts: %w (apt-get install -y openssh-server)", err)
	}
	out, _ := exec.CommandContext(ctx, sshd, "-V").CombinedOutput()
	m := sshdVersionRE().FindSubmatch(out)
	if m == nil {
		return [2]int{}, fmt.Errorf("hosts: %s -V: no OpenSSH version in %q", sshd, out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return [2]int{major, minor}, nil
}
