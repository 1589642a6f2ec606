// Command floor is the floor of the sync benchmark: the least a Go program
// with x/crypto/ssh and pkg/sftp must do to leave the same files on the same
// hosts as `mno run sync`, with one connection per host and no engine.
//
//	floor SPEC.json
//
// SPEC names the identity and, per host, its address, pinned host key, login
// user and the one file to converge: a whole file (the Traefik routes of a
// VPS) or a block inside a file (the /etc/hosts block of a laptop). Each file
// is read first and written only when it differs, atomically (temporary file
// in the parent directory, rename), over SFTP as root or through one
// `sudo -n sh` per write for another login user. Every host is done at once.
// It prints one line per host that changed and exits 1 if any host failed.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	floorspec "github.com/mno-sh/mno/bench/floor/spec"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor SPEC.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fatal(err)
	}
	var spec floorspec.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		fatal(err)
	}
	keyData, err := os.ReadFile(spec.Identity)
	if err != nil {
		fatal(err)
	}
	signer, err := xssh.ParsePrivateKey(keyData)
	if err != nil {
		fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]string, len(spec.Hosts))
	errs := make([]error, len(spec.Hosts))
	for i, h := range spec.Hosts {
		wg.Go(func() { results[i], errs[i] = converge(h, signer, spec.QuickAck) })
	}
	wg.Wait()
	failed := false
	for i, h := range spec.Hosts {
		switch {
		case errs[i] != nil:
			fmt.Fprintf(os.Stderr, "%s: %v\n", h.Name, errs[i])
			failed = true
		case results[i] != "":
			fmt.Printf("%s: %s\n", h.Name, results[i])
		}
	}
	if failed {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(2)
}

// converge makes h's file what it should be; it returns "changed" or "".
func converge(h floorspec.Host, signer xssh.Signer, quickAck bool) (string, error) {
	pin, _, _, _, err := xssh.ParseAuthorizedKey([]byte(h.HostKey))
	if err != nil {
		return "", err
	}
	cfg := &xssh.ClientConfig{
		User:              h.User,
		Auth:              []xssh.AuthMethod{xssh.PublicKeys(signer)},
		HostKeyCallback:   xssh.FixedHostKey(pin),
		HostKeyAlgorithms: []string{pin.Type()},
		Timeout:           10 * time.Second,
	}
	raw, err := net.DialTimeout("tcp", h.Addr, cfg.Timeout)
	if err != nil {
		return "", err
	}
	if quickAck {
		raw = withQuickAck(raw)
	}
	cc, chans, reqs, err := xssh.NewClientConn(raw, h.Addr, cfg)
	if err != nil {
		raw.Close()
		return "", err
	}
	c := xssh.NewClient(cc, chans, reqs)
	defer c.Close()

	want := func(old []byte) []byte {
		if h.Content != nil {
			return []byte(*h.Content)
		}
		return []byte(withBlock(string(old), h.Block, h.BlockBegin, h.BlockEnd))
	}
	tmp := path.Join(h.TmpDir, "."+path.Base(h.Path)+".floor.tmp")
	var changed bool
	if h.User == "root" {
		cl, err := sftp.NewClient(c)
		if err != nil {
			return "", err
		}
		defer cl.Close()
		changed, err = sftpConverge(cl, h.Path, tmp, h.Mode, want)
		if err != nil {
			return "", err
		}
	} else if changed, err = sudoConverge(c, h.Path, tmp, h.Mode, want); err != nil {
		return "", err
	}
	if changed {
		return "changed", nil
	}
	return "", nil
}

// withBlock drops the block between begin and end from text, trims trailing
// blank lines and appends block after one blank line.
func withBlock(text, block, begin, end string) string {
	var out []string
	skip := false
	for _, line := range strings.Split(text, "\n") {
		s := strings.TrimSpace(line)
		switch {
		case skip:
			skip = !strings.HasPrefix(s, end)
			continue
		case strings.HasPrefix(s, begin):
			skip = true
			continue
		}
		out = append(out, line)
	}
	for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	s := strings.Join(out, "\n")
	if s != "" {
		s += "\n\n"
	}
	return s + block
}

// sftpConverge reads p and, when it differs from want(old), writes it
// through tmp: mode, rename.
func sftpConverge(cl *sftp.Client, p, tmp string, mode uint32, want func([]byte) []byte) (bool, error) {
	var old []byte
	r, err := cl.Open(p)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return false, err
	default:
		old, err = io.ReadAll(r)
		r.Close()
		if err != nil {
			return false, err
		}
	}
	data := want(old)
	if old != nil && bytes.Equal(old, data) {
		return false, nil
	}
	w, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return false, err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return false, err
	}
	if err := w.Chmod(os.FileMode(mode)); err != nil {
		w.Close()
		return false, err
	}
	if err := w.Close(); err != nil {
		return false, err
	}
	return true, cl.PosixRename(tmp, p)
}

// sudoScript prints $1 (as root), then a newline and the marker $2, and
// waits on stdin: EOF writes nothing; a first line "w" writes the rest of
// stdin to $1 through $3 with mode $4. One sudo per host, read and write.
const sudoScript = `cat -- "$1" 2>/dev/null
printf '\n%s\n' "$2"
IFS= read -r w || exit 0
[ "$w" = w ] || exit 0
umask 077 && cat > "$3" && chmod "$4" "$3" && mv -f "$3" "$1"`

// sudoConverge is sftpConverge as root on one exec of sudoScript.
func sudoConverge(c *xssh.Client, p, tmp string, mode uint32, want func([]byte) []byte) (bool, error) {
	s, err := c.NewSession()
	if err != nil {
		return false, err
	}
	defer s.Close()
	var errb bytes.Buffer
	s.Stderr = &errb
	stdout, err := s.StdoutPipe()
	if err != nil {
		return false, err
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		return false, err
	}
	marker := fmt.Sprintf("floor-end-%d", time.Now().UnixNano())
	cmd := "sudo -n sh -c " + quote(sudoScript) + " sh " + quote(p) + " " + quote(marker) + " " + quote(tmp) + " " + fmt.Sprintf("%o", mode)
	if err := s.Start(cmd); err != nil {
		return false, err
	}
	end := []byte("\n" + marker + "\n")
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for !bytes.HasSuffix(buf.Bytes(), end) {
		n, err := stdout.Read(chunk)
		buf.Write(chunk[:n])
		if err != nil {
			break
		}
	}
	if !bytes.HasSuffix(buf.Bytes(), end) {
		s.Wait()
		return false, fmt.Errorf("sudo sh: no marker: %s", strings.TrimSpace(errb.String()))
	}
	old := buf.Bytes()[:buf.Len()-len(end)]
	data := want(old)
	changed := !bytes.Equal(old, data)
	if changed {
		stdin.Write([]byte("w\n"))
		stdin.Write(data)
	}
	stdin.Close()
	if err := s.Wait(); err != nil {
		return false, fmt.Errorf("sudo sh: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return changed, nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// quickAckConn re-arms TCP_QUICKACK after every read (see builtins/ssh).
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) })
	}
	return n, err
}

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
