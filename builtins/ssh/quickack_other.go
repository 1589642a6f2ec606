//go:build !linux

package ssh

import "net"

// TCP_QUICKACK is Linux-only.
func withQuickAck(c net.Conn) net.Conn { return c }
