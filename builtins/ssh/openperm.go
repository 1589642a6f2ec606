package ssh

import (
	"encoding/binary"
	"io"
)

// SFTP protocol numbers (draft-ietf-secsh-filexfer-02, what OpenSSH speaks).
const (
	fxpOpen         = 3
	fxfCreat        = 0x08
	fxAttrPerms     = 0x04
	createdFileMode = 0o600
)

// openPermWriter sits between pkg/sftp and the SFTP channel and gives every
// SSH_FXP_OPEN that creates a file the attribute "permissions 0600", so a
// temporary file is private from the moment it exists (sftp-server passes
// the mode to open(2)), not only after a chmod. pkg/sftp cannot send
// attributes with OPEN itself. Every other packet passes through untouched;
// the intended mode is set afterwards as before.
type openPermWriter struct {
	w    io.WriteCloser
	head []byte // the start of a packet, until its length and type are known
	pkt  []byte // a whole OPEN packet being collected
	rest int    // bytes of the current non-OPEN packet still to pass through
}

func (o *openPermWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch {
		case o.rest > 0:
			k := min(o.rest, len(p))
			if _, err := o.w.Write(p[:k]); err != nil {
				return 0, err
			}
			o.rest -= k
			p = p[k:]
		case o.pkt != nil:
			need := 4 + int(binary.BigEndian.Uint32(o.pkt[:4])) - len(o.pkt)
			k := min(need, len(p))
			o.pkt = append(o.pkt, p[:k]...)
			p = p[k:]
			if k == need {
				out := withCreatePerms(o.pkt)
				o.pkt = nil
				if _, err := o.w.Write(out); err != nil {
					return 0, err
				}
			}
		default:
			k := min(5-len(o.head), len(p))
			o.head = append(o.head, p[:k]...)
			p = p[k:]
			if len(o.head) < 5 {
				continue
			}
			length := int(binary.BigEndian.Uint32(o.head[:4]))
			if o.head[4] == fxpOpen && length < 1<<16 {
				o.pkt = o.head
			} else {
				if _, err := o.w.Write(o.head); err != nil {
					return 0, err
				}
				o.rest = length - 1
			}
			o.head = nil
		}
	}
	return n, nil
}

func (o *openPermWriter) Close() error { return o.w.Close() }

// withCreatePerms rewrites an OPEN packet (length, type, id, path, pflags,
// attrs) that creates a file and carries no attributes so that it carries
// permissions 0600; anything else is returned as it is.
func withCreatePerms(pkt []byte) []byte {
	if len(pkt) < 13 {
		return pkt
	}
	pathLen := int(binary.BigEndian.Uint32(pkt[9:13]))
	off := 13 + pathLen
	if off+8 != len(pkt) { // pflags and an empty attrs flags word, nothing else
		return pkt
	}
	pflags := binary.BigEndian.Uint32(pkt[off : off+4])
	attrFlags := binary.BigEndian.Uint32(pkt[off+4 : off+8])
	if pflags&fxfCreat == 0 || attrFlags != 0 {
		return pkt
	}
	out := make([]byte, 0, len(pkt)+4)
	out = append(out, pkt[:off+4]...)
	out = binary.BigEndian.AppendUint32(out, fxAttrPerms)
	out = binary.BigEndian.AppendUint32(out, createdFileMode)
	binary.BigEndian.PutUint32(out[:4], uint32(len(out)-4))
	return out
}
