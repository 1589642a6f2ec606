package ssh

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAckConn re-arms TCP_QUICKACK after every read. sshd does not set
// TCP_NODELAY on sessions without a pty, so its small replies wait for our
// ACK (Nagle), which Linux delays by up to 40 ms; quick ACKs cut the first
// exec on a new connection from ~47 ms to a few (ARCHITECTURE.md, "Performance facts"). The kernel
// clears the flag by itself, hence after every read.
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.raw.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
	return n, err
}

// withQuickAck wraps a TCP connection; other connections are returned as is.
func withQuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{Conn: tc, raw: raw}
}
