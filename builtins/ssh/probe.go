package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

// errProbed ends a probe's handshake once the host key is known: nothing is
// authenticated, nothing is trusted.
var errProbed = errors.New("host key probed")

// hostKey is ssh.host_key(address, port=22, timeout="10s", name=None): the
// host key a host presents, without trusting it or logging in, so that a
// playbook can show its fingerprint and ask the user to confirm it before
// connecting with host_key= pinned to what was confirmed.
func hostKey(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		address string
		port    = 22
		timeout = starkit.Duration{D: 10 * time.Second}
		name    string
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "address", &address, "port?", &port, "timeout?", &timeout, "name?", &name); err != nil {
		return nil, err
	}
	if err := checkAddress(address); err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	if port < 1 || port > 65535 {
		return nil, starkit.Errorf(b.Name(), "invalid port %d", port)
	}
	if timeout.D <= 0 {
		return nil, starkit.Errorf(b.Name(), "timeout must be positive")
	}
	if name == "" {
		name = address
	}
	r := runctx.From(thread)
	hp := hostport(address, port)
	var key xssh.PublicKey
	_, err := r.Journal.Do(r.Ctx, journal.Op{
		Target: name, Kind: "host_key", Desc: hp, Pos: starkit.CallerPos(thread),
		Apply: func(ctx context.Context) (journal.Change, error) {
			k, err := probeHostKey(ctx, hp, timeout.D)
			if err != nil {
				return journal.Change{}, err
			}
			key = k
			return journal.Change{Note: k.Type() + " " + fingerprint(k)}, nil
		},
	})
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%s: %w", name, err)
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"key":         starlark.String(keyLine(key)),
		"type":        starlark.String(key.Type()),
		"fingerprint": starlark.String(fingerprint(key)),
	}), nil
}

// probeHostKey runs a handshake with hostport up to the host key and stops
// there. ed25519 is asked for first, as connect does without a pin, so the
// key probed is the key a later connect pinned to it sees.
func probeHostKey(ctx context.Context, hostport string, timeout time.Duration) (xssh.PublicKey, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %s (timeout=)", timeout))
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, journal.Unreachable(fmt.Errorf("cannot reach %s: %v", hostport, err))
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var key xssh.PublicKey
	cfg := &xssh.ClientConfig{
		User:              "mno-probe",
		HostKeyAlgorithms: (&hostKeyPolicy{}).algorithms(hostport),
		HostKeyCallback: func(_ string, _ net.Addr, k xssh.PublicKey) error {
			key = k
			return errProbed
		},
		ClientVersion: "SSH-2.0-mno",
	}
	_, _, _, err = xssh.NewClientConn(raw, hostport, cfg)
	if key != nil {
		return key, nil
	}
	if ctx.Err() != nil {
		return nil, journal.Unreachable(fmt.Errorf("cannot reach %s: SSH handshake: %v", hostport, context.Cause(ctx)))
	}
	msg := "no host key"
	if err != nil {
		msg = strings.TrimPrefix(err.Error(), "ssh: handshake failed: ")
	}
	return nil, journal.Unreachable(fmt.Errorf("cannot reach %s: SSH handshake: %s", hostport, msg))
}

// fingerprintOf is ssh.fingerprint(key): the SHA256 fingerprint of a key line
// ("ssh-ed25519 AAAA…", as host_key= and registries hold it); a fingerprint
// is returned as it is.
func fingerprintOf(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var s string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "key", &s); err != nil {
		return nil, err
	}
	k, fp, err := parsePin(s)
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	if k != nil {
		fp = fingerprint(k)
	}
	return starlark.String(fp), nil
}
