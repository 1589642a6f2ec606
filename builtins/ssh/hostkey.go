package ssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyPolicy decides whether a presented host key is trusted: a pinned
// key or fingerprint wins; otherwise the key must be in known_hosts, where
// acceptNew records a key never seen before. Nothing ever prompts.
type hostKeyPolicy struct {
	pinKey     xssh.PublicKey // host_key="ssh-ed25519 AAAA…"
	pinFP      string         // host_key="SHA256:…"
	knownHosts string         // $MNO_HOME/known_hosts
	acceptNew  bool
}

// parsePin reads host_key=: an authorized-keys style line, a known_hosts
// line, or a SHA256 fingerprint.
func parsePin(s string) (xssh.PublicKey, string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "SHA256:") {
		fp := strings.TrimRight(s, "=")
		if len(fp) != len("SHA256:")+43 {
			return nil, "", fmt.Errorf("host_key %q is not a SHA256 fingerprint (want SHA256: and 43 base64 characters, as ssh-keygen -lf prints)", s)
		}
		return nil, fp, nil
	}
	if k, _, _, _, err := xssh.ParseAuthorizedKey([]byte(s)); err == nil {
		return k, "", nil
	}
	if _, _, k, _, _, err := xssh.ParseKnownHosts([]byte(s)); err == nil {
		return k, "", nil
	}
	return nil, "", fmt.Errorf("host_key %q is neither a public key line (\"ssh-ed25519 AAAA…\") nor a fingerprint (\"SHA256:…\")", s)
}

// keyLine is the "type base64" line of a key, as host_key= accepts it.
func keyLine(k xssh.PublicKey) string {
	return strings.TrimSpace(string(xssh.MarshalAuthorizedKey(k)))
}

// algorithms are the host key algorithms to offer: those of the pinned or
// known key when there is one (so the host presents that key, not another
// of its keys), else every plain key type with ed25519 first.
func (p *hostKeyPolicy) algorithms(hostport string) []string {
	if p.pinKey != nil {
		return algorithmsFor(p.pinKey.Type())
	}
	var algos []string
	if p.pinFP == "" {
		for _, k := range p.knownKeys(hostport) {
			for _, a := range algorithmsFor(k.Type()) {
				if !contains(algos, a) {
					algos = append(algos, a)
				}
			}
		}
	}
	if len(algos) > 0 {
		return algos
	}
	return []string{xssh.KeyAlgoED25519, xssh.KeyAlgoECDSA256, xssh.KeyAlgoECDSA384, xssh.KeyAlgoECDSA521,
		xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256}
}

func algorithmsFor(keyType string) []string {
	if keyType == xssh.KeyAlgoRSA {
		return []string{xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// knownKeys are the keys known_hosts holds for hostport. A lookup with a
// throwaway key always misses, and the miss lists what is known.
func (p *hostKeyPolicy) knownKeys(hostport string) []xssh.PublicKey {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	probe, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		return nil
	}
	err = checkKnownHosts(p.knownHosts, hostport, probe.PublicKey())
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var keys []xssh.PublicKey
	for _, w := range ke.Want {
		keys = append(keys, w.Key)
	}
	return keys
}

// checkKnownHosts returns nil when key is known for hostport, a
// *knownhosts.KeyError when it is unknown (Want empty) or different, or
// another error. A missing file knows no host.
func checkKnownHosts(file, hostport string, key xssh.PublicKey) error {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return &knownhosts.KeyError{}
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return fmt.Errorf("reading %s: %v", file, err)
	}
	_, port, _ := net.SplitHostPort(hostport)
	var pn int
	fmt.Sscan(port, &pn)
	// The address is what is looked up; remote only has to be a TCP address.
	return cb(hostport, &net.TCPAddr{IP: net.IPv4zero, Port: pn}, key)
}

// verify checks key, presented by hostport, against the policy. It records
// an unknown key when acceptNew is set and reports whether it did.
func (p *hostKeyPolicy) verify(hostport string, key xssh.PublicKey) (recorded bool, err error) {
	presented := fmt.Sprintf("%s %s", key.Type(), xssh.FingerprintSHA256(key))
	switch {
	case p.pinKey != nil:
		if bytes.Equal(p.pinKey.Marshal(), key.Marshal()) {
			return false, nil
		}
		return false, fmt.Errorf("HOST KEY MISMATCH for %s: expected %s %s (host_key=), presented %s; "+
			"the connection may be intercepted, or the host was reinstalled: check the key on the host before changing the pin",
			hostport, p.pinKey.Type(), xssh.FingerprintSHA256(p.pinKey), presented)
	case p.pinFP != "":
		if xssh.FingerprintSHA256(key) == p.pinFP {
			return false, nil
		}
		return false, fmt.Errorf("HOST KEY MISMATCH for %s: expected %s (host_key=), presented %s; "+
			"the connection may be intercepted, or the host was reinstalled: check the key on the host before changing the pin",
			hostport, p.pinFP, presented)
	}
	err = checkKnownHosts(p.knownHosts, hostport, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &re):
		return false, fmt.Errorf("host key %s of %s is revoked in %s", presented, hostport, re.Revoked.Filename)
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return false, changedKeyError(hostport, presented, ke.Want)
	case errors.As(err, &ke):
		if !p.acceptNew {
			return false, fmt.Errorf("host key of %s is unknown (it presented %s); to enrol it, check that fingerprint on the host "+
				"(`mno bootstrap` prints it), then pass host_key=%q to ssh.connect, or pass accept_new_host_key=True to record it in %s",
				hostport, presented, keyLine(key), p.knownHosts)
		}
		return recordKnownHost(p.knownHosts, hostport, key)
	default:
		return false, err
	}
}

func changedKeyError(hostport, presented string, want []knownhosts.KnownKey) error {
	var exp []string
	for _, w := range want {
		exp = append(exp, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), xssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
	}
	return fmt.Errorf("HOST KEY CHANGED for %s: expected %s, presented %s; the connection may be intercepted, "+
		"or the host was reinstalled: verify the new key on the host, then remove the old line from known_hosts",
		hostport, strings.Join(exp, ", "), presented)
}

// recordKnownHost appends key for hostport to file (created 0600), under an
// exclusive lock so concurrent runs and threads neither interleave lines nor
// record two different keys for one host.
func recordKnownHost(file, hostport string, key xssh.PublicKey) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return false, fmt.Errorf("recording host key: %v", err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("recording host key: %v", err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return false, fmt.Errorf("recording host key: locking %s: %v", file, err)
	}
	defer unlockFile(f)
	// Another thread or run may have recorded this host meanwhile.
	err = checkKnownHosts(file, hostport, key)
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return false, changedKeyError(hostport, fmt.Sprintf("%s %s", key.Type(), xssh.FingerprintSHA256(key)), ke.Want)
	case !errors.As(err, &ke):
		return false, err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key) + "\n"
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil || err == io.EOF {
			if last[0] != '\n' {
				line = "\n" + line
			}
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return false, fmt.Errorf("recording host key in %s: %v", file, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("recording host key in %s: %v", file, err)
	}
	return true, nil
}
