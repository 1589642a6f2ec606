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
	if err == nil {
		err = checkConnect(address, user, port, timeout.D)
	}
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	if name == "" {
		name = address
	}
	r := runctx.From(thread)
	policy := &hostKeyPolicy{knownHosts: knownHostsFile(r.Config), acceptNew: acceptNew}
	if err := pinHostKey(policy, hostKeyV, name); err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	jump, ok := jumpV.(*host)
	if _, none := jumpV.(starlark.NoneType); !ok && !none {
		return nil, starkit.Errorf(b.Name(), "jump: got %s, want a host from ssh.connect", jumpV.Type())
	}
	hp := hostport(address, port)
	key, desc := connKey(user, hp, idFiles, jump)
	co := &connectOp{thread: thread, r: r, pool: poolOf(r), name: name, key: key, idFiles: idFiles, policy: policy,
		spec: dialSpec{user: user, hostport: hp, timeout: timeout.D, policy: policy, quickAck: true}}
	if jump != nil {
		co.spec.jump = jump.c
	}
	_, err = r.Journal.Do(r.Ctx, journal.Op{
		Target: name, Kind: "connect", Desc: desc, Pos: starkit.CallerPos(thread), Apply: co.apply,
	})
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%s: %w", name, err)
	}
	return &host{name: name, address: address, user: user, port: port, c: co.c, run: r}, nil
}

// checkConnect checks connect's address, user, port and timeout.
func checkConnect(address, user string, port int, timeout time.Duration) error {
	if err := checkAddress(address); err != nil {
		return err
	}
	if user == "" || strings.ContainsAny(user, "@ \t\n") {
		return fmt.Errorf("invalid user %q", user)
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("invalid port %d", port)
	}
	if timeout <= 0 {
		return fmt.Errorf("timeout must be positive")
	}
	return nil
}

// pinHostKey sets policy's pin from connect's host_key= (None or "": no
// pin).
func pinHostKey(policy *hostKeyPolicy, v starlark.Value, name string) error {
	switch v := v.(type) {
	case starlark.NoneType:
	case starlark.String:
		if strings.TrimSpace(string(v)) != "" {
			k, fp, err := parsePin(string(v))
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			policy.pinKey, policy.pinFP = k, fp
		}
	default:
		return fmt.Errorf("host_key: got %s, want string or None", v.Type())
	}
	return nil
}

// connKey is the pool key of a connection and its journal description.
func connKey(user, hp string, idFiles []string, jump *host) (key, desc string) {
	key = user + "@" + hp
	desc = key
	if len(idFiles) > 0 {
		// Another identity is another login: its own connection.
		key += "\x00" + strings.Join(idFiles, "\x00")
		desc += " (identity " + strings.Join(idFiles, ", ") + ")"
	}
	if jump != nil {
		desc += " via " + jump.name
	}
	return key, desc
}

// connectOp is the effect of one connect: a connection from the pool,
// dialled when the pool has none.
type connectOp struct {
	thread  *starlark.Thread
	r       *runctx.Run
	pool    *pool
	name    string
	key     string
	idFiles []string
	policy  *hostKeyPolicy
	spec    dialSpec // without identity and keepalive, which apply fills in
	c       *conn
}

func (co *connectOp) apply(ctx context.Context) (journal.Change, error) {
	p, spec := co.pool, co.spec
	id, err := p.identity()
	if len(co.idFiles) > 0 {
		id, err = p.identityFiles(co.idFiles)
	}
	if err != nil {
		return journal.Change{}, err
	}
	if spec.keepalive, err = p.keepalive(); err != nil {
		return journal.Change{}, err
	}
	spec.id = id
	var recorded, reused bool
	co.c, recorded, reused, err = p.get(ctx, co.key, func() (*conn, bool, error) { return dial(ctx, co.r.Ctx, spec) })
	if err != nil {
		return journal.Change{}, err
	}
	if reused {
		// The connection was verified against another connect's
		// policy; this one's must hold too.
		if recorded, err = co.policy.verify(spec.hostport, co.c.hostKey); err != nil {
			return journal.Change{}, err
		}
	}
	if recorded {
		co.r.Journal.Log(starkit.CallerPos(co.thread), fmt.Sprintf("[%s] host key %s %s recorded in %s",
			co.name, co.c.hostKey.Type(), fingerprint(co.c.hostKey), co.policy.knownHosts))
		return journal.Change{Note: "host key recorded"}, nil
	}
	if reused {
		return journal.Change{Note: "reused"}, nil
	}
	return journal.Change{}, nil
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
