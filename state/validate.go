package state

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	xssh "golang.org/x/crypto/ssh"
)

// The rules every value of the cluster's state is held to before it may reach
// a file, a rule, a command or a key option. Each returns nil or an error
// saying what the value should be; none of them trims or guesses.

// Label checks one RFC 1123 label: 1–63 ASCII letters, digits and '-', not
// starting or ending with '-'.
func Label(s string) error {
	if s == "" {
		return fmt.Errorf("empty label")
	}
	if len(s) > 63 {
		return fmt.Errorf("label %s is longer than 63 characters", quote(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-') {
			return fmt.Errorf("%s holds %s: a DNS label has only letters, digits and '-'", quote(s), quote(string(rune(c))))
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return fmt.Errorf("label %s starts or ends with '-'", quote(s))
	}
	return nil
}

// HostName checks an RFC 1123 host name: dot-separated labels, at most 253
// characters, no trailing dot.
func HostName(s string) error {
	if s == "" {
		return fmt.Errorf("empty host name")
	}
	if len(s) > 253 {
		return fmt.Errorf("%s is longer than 253 characters", quote(s))
	}
	for _, l := range strings.Split(s, ".") {
		if err := Label(l); err != nil {
			return fmt.Errorf("%s is not a host name: %v", quote(s), err)
		}
	}
	return nil
}

// DomainName checks a public domain: a host name of at least two labels whose
// last label is not all digits (so "localhost" and "10.0.0.1" are not
// domains).
func DomainName(s string) error {
	if err := HostName(s); err != nil {
		return err
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%s is not a domain (want at least two labels, e.g. example.com)", quote(s))
	}
	if allDigits(labels[len(labels)-1]) {
		return fmt.Errorf("%s is not a domain (its last label is a number)", quote(s))
	}
	return nil
}

// Subdomain checks a service's subdomain: "" or "@" (the apex of the domain)
// or a host name relative to the domain ("photos", "api.v2").
func Subdomain(s string) error {
	if s == "" || s == "@" {
		return nil
	}
	if err := HostName(s); err != nil {
		return fmt.Errorf("%s is not a subdomain (DNS labels, or \"@\" for the domain itself): %v", quote(s), trimQuoted(err, s))
	}
	return nil
}

// NodeName checks a node's name: a host name as `hostname` prints it, so
// MyNodeOne's names taken from $HOSTNAME (Vinay-ThinkPad) pass — one or more
// dot-separated labels of ASCII letters in either case, digits and '-', each
// starting and ending with a letter or digit, at most 63 characters in all.
func NodeName(s string) error {
	if s == "" {
		return fmt.Errorf("empty node name")
	}
	if len(s) > 63 {
		return fmt.Errorf("%s is longer than 63 characters", quote(s))
	}
	for _, l := range strings.Split(s, ".") {
		if err := Label(l); err != nil {
			return fmt.Errorf("%s is not a node name (letters, digits, '-' and '.', at most 63, like a host name)", quote(s))
		}
	}
	return nil
}

// UserName checks a login user: a letter or '_' first, then letters,
// digits, '_', '-' and '.', at most 32 characters.
func UserName(s string) error {
	ok := s != "" && len(s) <= 32 && (isAlpha(s[0]) || s[0] == '_')
	for i := 0; ok && i < len(s); i++ {
		ok = isAlnum(s[i]) || strings.IndexByte("_-.", s[i]) >= 0
	}
	if !ok {
		return fmt.Errorf("%s is not a user name (a letter or '_', then letters, digits, '_', '-', '.'; at most 32)", quote(s))
	}
	return nil
}

// AddrUse says what an address is for; the rules differ by use.
type AddrUse int

const (
	// NodeAddr is how the control plane reaches a node (and control-plane-ip,
	// VPS addresses in domain-registry). Loopback is accepted: one-machine
	// labs and benches run nodes there, and SSH still checks the pinned key.
	NodeAddr AddrUse = iota
	// BackendAddr is a service's address: a VPS routes public traffic to it
	// and laptops resolve names to it. Loopback is refused: on a VPS it would
	// publish the VPS's own local-only ports, on a laptop it names the laptop.
	BackendAddr
)

// Addr parses an IP literal (never a host name) for use. Refused everywhere:
// anything with a zone, the unspecified and "this network" addresses
// (0.0.0.0/8, ::), link-local addresses (169.254.0.0/16 — which holds cloud
// metadata services at 169.254.169.254 — and fe80::/10), multicast and the
// broadcast address. IPv4-mapped IPv6 addresses are read as IPv4.
func Addr(s string, use AddrUse) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || strings.ContainsAny(s, " \t\r\n") {
		return netip.Addr{}, fmt.Errorf("%s is not an IP address", quote(s))
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s has a zone: want a plain IP address", quote(s))
	}
	a = a.Unmap()
	why := ""
	switch {
	case a.IsUnspecified() || a.Is4() && a.As4()[0] == 0:
		why = "an unspecified address"
	case a.IsLinkLocalUnicast():
		why = "a link-local address (169.254.0.0/16, fe80::/10: cloud metadata lives there)"
	case a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast():
		why = "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "the broadcast address"
	case a.IsLoopback() && use == BackendAddr:
		why = "a loopback address (on a VPS it would publish the VPS's own local ports)"
	}
	if why != "" {
		return netip.Addr{}, fmt.Errorf("%s is %s", quote(s), why)
	}
	return a, nil
}

// Port checks a TCP port: an integer 1–65535.
func Port(n int64) error {
	if n < 1 || n > 65535 {
		return fmt.Errorf("%d is not a TCP port (1-65535)", n)
	}
	return nil
}

// HostKey checks a pinned host key: a public key line ("ssh-ed25519 AAAA…")
// or a SHA256 fingerprint ("SHA256:" and 43 base64 characters).
func HostKey(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("host key %s spans several lines", quote(s))
	}
	if fp, ok := strings.CutPrefix(s, "SHA256:"); ok {
		fp = strings.TrimRight(fp, "=")
		if _, err := base64.RawStdEncoding.DecodeString(fp); err != nil || len(fp) != 43 {
			return fmt.Errorf("%s is not a SHA256 fingerprint (SHA256: and 43 base64 characters)", quote(s))
		}
		return nil
	}
	if _, _, _, _, err := xssh.ParseAuthorizedKey([]byte(s)); err != nil {
		return fmt.Errorf("%s is neither a public key line (\"ssh-ed25519 AAAA…\") nor a SHA256 fingerprint", quote(s))
	}
	return nil
}

// ServiceName checks a service-registry key: 1–253 letters, digits, '-',
// '_' and '.', as Kubernetes and MyNodeOne name services.
func ServiceName(s string) error {
	ok := s != "" && len(s) <= 253
	for i := 0; ok && i < len(s); i++ {
		ok = isAlnum(s[i]) || strings.IndexByte("-_.", s[i]) >= 0
	}
	if !ok {
		return fmt.Errorf("%s is not a service name (letters, digits, '-', '_', '.'; at most 253)", quote(s))
	}
	return nil
}

// PlainText checks free text shown to users (cluster-name, location): at
// most 253 printable characters, no line breaks or control characters.
func PlainText(s string) error {
	if len(s) > 253 || !utf8.ValidString(s) {
		return fmt.Errorf("%s is not short plain text", quote(s))
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s holds a control character", quote(s))
		}
	}
	return nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// quote renders an untrusted value for a message: Go-quoted (so newlines,
// control characters and terminal escapes show as escapes) and cut to a
// readable length.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("…(%d bytes)", len(s))
}

// trimQuoted drops a leading "<quoted s> " from an inner error, which the
// outer message already names.
func trimQuoted(err error, s string) string {
	msg := err.Error()
	return strings.TrimPrefix(strings.TrimPrefix(msg, quote(s)+" is not a host name: "), quote(s)+" ")
}
