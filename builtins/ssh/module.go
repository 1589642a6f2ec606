package ssh

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Module returns the ssh module.
func Module() starkit.Module {
	return starkit.Module{
		Name: "ssh",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"ssh": &starlarkstruct.Module{Name: "ssh", Members: starlark.StringDict{
			"connect":     starlark.NewBuiltin("ssh.connect", connect),
			"host_key":    starlark.NewBuiltin("ssh.host_key", hostKey),
			"fingerprint": starlark.NewBuiltin("ssh.fingerprint", fingerprintOf),
		}}},
	}
}

func connect(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		address   string
		user                     = "root"
		port                     = 22
		hostKeyV  starlark.Value = starlark.None
		acceptNew bool
		timeout                  = starkit.Duration{D: 10 * time.Second}
		jumpV     starlark.Value = starlark.None
		name      string
		identityV starlark.Value = starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "address", &address, "user?", &user, "port?", &port,
		"host_key?", &hostKeyV, "accept_new_host_key?", &acceptNew, "timeout?", &timeout, "jump?", &jumpV,
		"name?", &name, "identity?", &identityV); err != nil {
		return nil, err
	}
	idFiles, err := identityFiles(identityV)
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	if err := checkAddress(address); err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	if user == "" || strings.ContainsAny(user, "@ \t\n") {
		return nil, starkit.Errorf(b.Name(), "invalid user %q", user)
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
	policy := &hostKeyPolicy{knownHosts: knownHostsFile(r.Config), acceptNew: acceptNew}
	switch v := hostKeyV.(type) {
	case starlark.NoneType:
	case starlark.String:
		if strings.TrimSpace(string(v)) != "" {
			k, fp, err := parsePin(string(v))
			if err != nil {
				return nil, starkit.Errorf(b.Name(), "%s: %v", name, err)
			}
			policy.pinKey, policy.pinFP = k, fp
		}
	default:
		return nil, starkit.Errorf(b.Name(), "host_key: got %s, want string or None", hostKeyV.Type())
	}
	var jump *host
	switch v := jumpV.(type) {
	case starlark.NoneType:
	case *host:
		jump = v
	default:
		return nil, starkit.Errorf(b.Name(), "jump: got %s, want a host from ssh.connect", jumpV.Type())
	}

	p := poolOf(r)
	hp := hostport(address, port)
	key := user + "@" + hp
	desc := key
	if len(idFiles) > 0 {
		// Another identity is another login: its own connection.
		key += "\x00" + strings.Join(idFiles, "\x00")
		desc += " (identity " + strings.Join(idFiles, ", ") + ")"
	}
	if jump != nil {
		desc += " via " + jump.name
	}
	var c *conn
	_, err = r.Journal.Do(r.Ctx, journal.Op{
		Target: name, Kind: "connect", Desc: desc, Pos: starkit.CallerPos(thread),
		Apply: func(ctx context.Context) (journal.Change, error) {
			id, err := p.identity()
			if len(idFiles) > 0 {
				id, err = p.identityFiles(idFiles)
			}
			if err != nil {
				return journal.Change{}, err
			}
			ka, err := p.keepalive()
			if err != nil {
				return journal.Change{}, err
			}
			spec := dialSpec{user: user, hostport: hp, timeout: timeout.D, policy: policy, id: id, keepalive: ka, quickAck: true}
			if jump != nil {
				spec.jump = jump.c
			}
			var recorded, reused bool
			c, recorded, reused, err = p.get(ctx, key, func() (*conn, bool, error) { return dial(ctx, r.Ctx, spec) })
			if err != nil {
				return journal.Change{}, err
			}
			if reused {
				// The connection was verified against another connect's
				// policy; this one's must hold too.
				if recorded, err = policy.verify(hp, c.hostKey); err != nil {
					return journal.Change{}, err
				}
			}
			if recorded {
				r.Journal.Log(starkit.CallerPos(thread), fmt.Sprintf("[%s] host key %s %s recorded in %s",
					name, c.hostKey.Type(), fingerprint(c.hostKey), policy.knownHosts))
				return journal.Change{Note: "host key recorded"}, nil
			}
			if reused {
				return journal.Change{Note: "reused"}, nil
			}
			return journal.Change{}, nil
		},
	})
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%s: %w", name, err)
	}
	return &host{name: name, address: address, user: user, port: port, c: c, run: r}, nil
}

// identityFiles unpacks connect's identity=: None (the control plane
// identity), a private key file, or a list of them (the ones that exist are
// offered). Paths must be absolute: they name files on the control plane.
func identityFiles(v starlark.Value) ([]string, error) {
	var files []string
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.String:
		files = []string{string(v)}
	case *starlark.List, starlark.Tuple:
		it := starlark.Iterate(v)
		defer it.Done()
		var x starlark.Value
		for it.Next(&x) {
			s, ok := x.(starlark.String)
			if !ok {
				return nil, fmt.Errorf("identity: got a list holding %s, want file paths", x.Type())
			}
			files = append(files, string(s))
		}
	default:
		return nil, fmt.Errorf("identity: got %s, want a private key file or a list of them", v.Type())
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("identity: empty list")
	}
	for _, f := range files {
		if !filepath.IsAbs(f) || strings.ContainsAny(f, "\x00\n") {
			return nil, fmt.Errorf("identity: %q is not an absolute path on the control plane", f)
		}
	}
	return files, nil
}

// checkAddress refuses the forms other tools accept but connect spells
// differently ("user@host", "host:port").
func checkAddress(a string) error {
	switch {
	case a == "":
		return fmt.Errorf("empty address")
	case strings.Contains(a, "@"):
		return fmt.Errorf("address %q: pass the user as user=, not user@host", a)
	case strings.ContainsAny(a, " \t\n/"):
		return fmt.Errorf("invalid address %q", a)
	case strings.Contains(a, ":") && net.ParseIP(a) == nil:
		return fmt.Errorf("address %q: pass the port as port=, not host:port", a)
	}
	return nil
}

// knownHostsFile is $MNO_HOME/known_hosts (~/.mno/known_hosts by default).
func knownHostsFile(cfg runctx.Config) string {
	home := cfg.Home
	if home == "" {
		home = filepath.Dir(identityFile(runctx.Config{}))
	}
	return filepath.Join(home, "known_hosts")
}
