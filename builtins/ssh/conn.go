package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/engine/journal"
)

// maxSessions bounds the sessions open at once on one connection: sshd
// refuses more than MaxSessions (10 by default), SFTP holds one, and one more
// may be a parked sudo put/edit shell (maxParked, see conn.park).
const (
	maxSessions = 8
	maxParked   = 1
)

// keepaliveMisses unanswered keepalives drop a connection.
const keepaliveMisses = 3

// conn is one SSH connection of a run, shared by every host value and thread
// that connected as the same user to the same address and port.
type conn struct {
	id      string // user@host:port, for messages
	client  *xssh.Client
	hostKey xssh.PublicKey
	jump    *conn

	sessions chan struct{}
	parked   chan struct{} // slots of shells parked between probe and write
	done     chan struct{} // closed once the connection is gone
	mu       sync.Mutex
	reason   error // why it is gone
	stopCtx  func() bool

	sftpMu sync.Mutex
	sftp   *sftp.Client

	factsMu sync.Mutex
	facts   *facts

	idsMu  sync.Mutex
	ids    *idCache
	stages sync.Map // target dir → staging dir that worked
	// hostsHelper is set once a sudo edit of /etc/hosts went through the
	// laptop rule's helper (HostsHelperPath): the generic script is refused.
	hostsHelper atomic.Bool
}

// dialSpec is what one connection needs.
type dialSpec struct {
	user      string
	hostport  string
	timeout   time.Duration
	jump      *conn
	policy    *hostKeyPolicy
	id        *identity
	keepalive time.Duration
	quickAck  bool
}

// errRunCancelled is why connections close when the run is cancelled; it
// does not make hosts unreachable.
var errRunCancelled = errors.New("run cancelled")

// authError marks a key the host refused: the host is reachable, so it
// counts as failed, not unreachable.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

// dial opens a connection within spec.timeout (TCP connect and handshake).
// Errors reaching the host are journal.Unreachable; host key and
// authentication errors are not.
func dial(ctx context.Context, runCtx context.Context, spec dialSpec) (c *conn, recorded bool, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, spec.timeout, fmt.Errorf("no answer within %s (timeout=)", spec.timeout))
	defer cancel()
	via := ""
	if spec.jump != nil {
		via = " via " + spec.jump.id
		if err := spec.jump.alive(); err != nil {
			return nil, false, err
		}
	}
	raw, err := dialTCP(ctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, false, journal.Unreachable(fmt.Errorf("cannot reach %s%s: %v", spec.hostport, via, err))
	}
	client, presented, recorded, err := handshake(ctx, raw, spec, via)
	if err != nil {
		return nil, false, err
	}
	return newConn(runCtx, spec, client, presented), recorded, nil
}

// dialTCP opens the TCP connection, through the jump host's connection when
// there is one.
func dialTCP(ctx context.Context, spec dialSpec) (net.Conn, error) {
	if spec.jump != nil {
		return spec.jump.client.DialContext(ctx, "tcp", spec.hostport)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", spec.hostport)
	if err == nil && spec.quickAck {
		raw = withQuickAck(raw)
	}
	return raw, err
}

// handshake runs the SSH handshake on raw: host key check by spec.policy
// (recorded: a new key was recorded), then public key authentication.
func handshake(ctx context.Context, raw net.Conn, spec dialSpec, via string) (client *xssh.Client, presented xssh.PublicKey, recorded bool, err error) {
	var hkErr error
	cfg := &xssh.ClientConfig{
		User:              spec.user,
		Auth:              []xssh.AuthMethod{xssh.PublicKeys(spec.id.signers...)},
		HostKeyAlgorithms: spec.policy.algorithms(spec.hostport),
		HostKeyCallback: func(_ string, _ net.Addr, key xssh.PublicKey) error {
			presented = key
			recorded, hkErr = spec.policy.verify(spec.hostport, key)
			return hkErr
		},
		ClientVersion: "SSH-2.0-mno",
	}
	// The deadline covers the handshake too: closing the socket ends it.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	cc, chans, reqs, err := xssh.NewClientConn(raw, spec.hostport, cfg)
	if !stop() {
		if err == nil {
			cc.Close()
		}
		return nil, nil, false, journal.Unreachable(fmt.Errorf("cannot reach %s%s: SSH handshake: %v", spec.hostport, via, context.Cause(ctx)))
	}
	if err != nil {
		raw.Close()
		if hkErr != nil {
			return nil, nil, false, hkErr
		}
		return nil, nil, false, handshakeErr(err, spec, via)
	}
	return xssh.NewClient(cc, chans, reqs), presented, recorded, nil
}

// handshakeErr explains a failed handshake (other than a host key refused).
func handshakeErr(err error, spec dialSpec, via string) error {
	msg := strings.TrimPrefix(err.Error(), "ssh: handshake failed: ")
	switch {
	case strings.Contains(msg, "unable to authenticate"):
		return &authError{fmt.Sprintf("%s%s refused the key %s for user %q: is it in ~%s/.ssh/authorized_keys? "+
			"(`mno bootstrap` prints the command that authorises it)", spec.hostport, via, spec.id.describe(), spec.user, spec.user)}
	case strings.Contains(msg, "no common algorithm"):
		return fmt.Errorf("%s%s: %s", spec.hostport, via, msg)
	}
	return journal.Unreachable(fmt.Errorf("cannot reach %s%s: SSH handshake: %s", spec.hostport, via, msg))
}

// newConn wraps an authenticated client: it is failed when the run is
// cancelled, marked gone when the host closes it, and kept alive.
func newConn(runCtx context.Context, spec dialSpec, client *xssh.Client, presented xssh.PublicKey) *conn {
	c := &conn{
		id:       spec.user + "@" + spec.hostport,
		client:   client,
		hostKey:  presented,
		jump:     spec.jump,
		sessions: make(chan struct{}, maxSessions),
		parked:   make(chan struct{}, maxParked),
		done:     make(chan struct{}),
	}
	c.stopCtx = context.AfterFunc(runCtx, func() { c.fail(errRunCancelled) })
	go func() {
		err := c.client.Wait()
		if err == nil {
			err = errors.New("closed by the host")
		}
		c.setReason(err)
		close(c.done)
	}()
	go c.keepalive(spec.keepalive)
	return c
}

func (c *conn) setReason(err error) {
	c.mu.Lock()
	if c.reason == nil {
		c.reason = err
	}
	c.mu.Unlock()
}

// fail drops the connection, recording why.
func (c *conn) fail(err error) {
	c.setReason(err)
	c.client.Close()
}

// close ends the connection at the end of the run.
func (c *conn) close() {
	if c.stopCtx != nil {
		c.stopCtx()
	}
	c.fail(errors.New("run ended"))
	c.sftpMu.Lock()
	if c.sftp != nil {
		c.sftp.Close()
	}
	c.sftpMu.Unlock()
	<-c.done
}

// dead reports whether the connection is gone.
func (c *conn) dead() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// alive returns nil, or the Unreachable error of a connection that is gone.
func (c *conn) alive() error {
	if !c.dead() {
		return nil
	}
	return c.lostErr()
}

func (c *conn) lostErr() error {
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	if reason == errRunCancelled {
		return fmt.Errorf("connection to %s closed: %v", c.id, reason)
	}
	return journal.Unreachable(fmt.Errorf("connection to %s lost: %v", c.id, reason))
}

// opErr turns the error of an operation into an Unreachable one when the
// operation failed because the connection went away.
func (c *conn) opErr(err error) error {
	if err == nil || journal.IsUnreachable(err) {
		return err
	}
	var se *sftp.StatusError
	if errors.As(err, &se) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrExist) {
		return err
	}
	// The transport error may arrive a moment before the connection is
	// declared gone.
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.done:
		return c.lostErr()
	case <-t.C:
		return err
	}
}

// keepalive sends keepalive@openssh.com every interval and drops the
// connection after keepaliveMisses intervals without an answer, so that
// operations on a host that vanished fail instead of hanging.
func (c *conn) keepalive(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending chan struct{}
	misses := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if pending != nil {
			select {
			case <-pending:
				pending, misses = nil, 0
			default:
				misses++
				if misses >= keepaliveMisses {
					c.fail(fmt.Errorf("no answer to %d keepalives in %s", misses, time.Duration(misses)*interval))
					return
				}
				continue
			}
		}
		p := make(chan struct{})
		pending = p
		go func() {
			c.client.SendRequest("keepalive@openssh.com", true, nil)
			close(p)
		}()
	}
}

// session opens a session, waiting for a free slot.
func (c *conn) session(ctx context.Context) (*xssh.Session, func(), error) {
	select {
	case c.sessions <- struct{}{}:
	case <-c.done:
		return nil, nil, c.lostErr()
	case <-ctx.Done():
		return nil, nil, context.Cause(ctx)
	}
	s, err := c.client.NewSession()
	if err != nil {
		<-c.sessions
		return nil, nil, c.opErr(err)
	}
	return s, func() { s.Close(); <-c.sessions }, nil
}

// park moves an open session from its slot to a parked one, if one is free:
// a parked session (a sudo put or edit's shell waiting, between its probe and
// its write, while Starlark code such as edit's fn runs) never holds a slot
// that other operations wait for, so it cannot deadlock them. The session's
// release must then call unpark instead of freeing its slot.
func (c *conn) park() bool {
	select {
	case c.parked <- struct{}{}:
		<-c.sessions
		return true
	default:
		return false
	}
}

func (c *conn) unpark() { <-c.parked }

// sftpClient returns the connection's SFTP client, started on first use.
func (c *conn) sftpClient() (*sftp.Client, error) {
	if err := c.alive(); err != nil {
		return nil, err
	}
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	cl, err := c.startSFTP()
	if err != nil {
		return nil, c.opErr(fmt.Errorf("starting sftp: %w", err))
	}
	c.sftp = cl
	return cl, nil
}

// startSFTP is sftp.NewClient with openPermWriter in the outgoing direction,
// so files it creates are 0600 from the start.
func (c *conn) startSFTP() (*sftp.Client, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return nil, err
	}
	pw, err := s.StdinPipe()
	if err == nil {
		var pr io.Reader
		if pr, err = s.StdoutPipe(); err == nil {
			if err = s.RequestSubsystem("sftp"); err == nil {
				var cl *sftp.Client
				cl, err = sftp.NewClientPipe(pr, &openPermWriter{w: pw}, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
				if err == nil {
					return cl, nil
				}
			}
		}
	}
	s.Close()
	return nil, err
}

// hostport joins an address and a port.
func hostport(addr string, port int) string { return net.JoinHostPort(addr, strconv.Itoa(port)) }
