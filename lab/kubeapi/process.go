package kubeapi

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// process is a child the server owns: etcd or kube-apiserver, logging to a file in Dir. A
// process of a server from [Open] is known by its Ref only (cmd and done are nil).
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	ref  proc.Ref
	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's result, valid after done
}

// startProcess runs bin with args, output appended to logPath, dying with this process
// (see lab/internal/proc for why that takes a locked thread) unless detached, when it gets
// its own session and outlives this process.
func startProcess(name, bin, logPath string, detached bool, args ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	var waited <-chan error
	if detached {
		waited, err = proc.StartDetached(cmd)
	} else {
		// Its own process group: a terminal's ^C reaches the test binary, which
		// stops us in order.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		waited, err = proc.Start(cmd)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	p.ref, _ = proc.RefOf(cmd.Process.Pid)
	go func() {
		p.err = <-waited
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	if p.done == nil {
		return !p.ref.Alive()
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// failure describes an unexpected exit, with the end of the log.
func (p *process) failure() error {
	return fmt.Errorf("%s exited (%v); end of %s:\n%s", p.name, p.err, p.log, p.tail(4096))
}

// portInUse reports whether the process died because its port was taken between our probe and
// its bind; Start then retries with other ports.
func (p *process) portInUse() bool {
	return bytes.Contains([]byte(p.tail(16384)), []byte("address already in use"))
}

func (p *process) tail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, 0)
	}
	var b bytes.Buffer
	b.ReadFrom(f)
	return b.String()
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the process to be reaped.
func (p *process) stop(grace time.Duration) error {
	if p.cmd == nil {
		return p.ref.Stop(grace)
	}
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	p.cmd.Process.Kill()
	<-p.done
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func loopbackURL(scheme string, port int) string {
	return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
