package ssh

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"

	"go.starlark.net/starlark"
	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

// host is the Starlark value ssh.connect returns: a label for the journal
// and a pooled connection. It is immutable, so it can be shared by parallel
// threads.
type host struct {
	name, address, user string
	port                int
	c                   *conn
	run                 *runctx.Run
}

var (
	_ starlark.HasAttrs = (*host)(nil)
	_ starlark.Value    = (*host)(nil)
)

// methods are the host's builtins, bound to a host on attribute access.
var methods = map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
	"run":    hostRun,
	"put":    hostPut,
	"get":    hostGet,
	"edit":   hostEdit,
	"stat":   hostStat,
	"exists": hostExists,
	"mkdir":  hostMkdir,
	"remove": hostRemove,
}

func (h *host) String() string {
	return fmt.Sprintf("<ssh.host %s %s@%s>", h.name, h.user, hostport(h.address, h.port))
}
func (h *host) Type() string         { return "ssh.host" }
func (h *host) Freeze()              {}
func (h *host) Truth() starlark.Bool { return true }
func (h *host) Hash() (uint32, error) {
	f := fnv.New32a()
	f.Write([]byte(h.name + "\x00" + h.c.id))
	return f.Sum32(), nil
}

func (h *host) AttrNames() []string {
	names := []string{"name", "address", "user", "port", "host_key", "fingerprint", "facts"}
	for m := range methods {
		names = append(names, m)
	}
	sort.Strings(names)
	return names
}

func (h *host) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(h.name), nil
	case "address":
		return starlark.String(h.address), nil
	case "user":
		return starlark.String(h.user), nil
	case "port":
		return starlark.MakeInt(h.port), nil
	case "host_key":
		return starlark.String(keyLine(h.c.hostKey)), nil
	case "fingerprint":
		return starlark.String(fingerprint(h.c.hostKey)), nil
	case "facts":
		f, err := h.facts()
		if err != nil {
			return nil, fmt.Errorf("host.facts: %s: %w", h.name, err)
		}
		return f.value(), nil
	}
	if m, ok := methods[name]; ok {
		return starlark.NewBuiltin("host."+name, m).BindReceiver(h), nil
	}
	return nil, nil
}

func fingerprint(k xssh.PublicKey) string { return xssh.FingerprintSHA256(k) }

// do passes one effect on this host through the journal.
func (h *host) do(thread *starlark.Thread, op journal.Op) (journal.Outcome, error) {
	op.Target = h.name
	if thread != nil {
		op.Pos = starkit.CallerPos(thread)
	}
	r := h.run
	if thread != nil {
		r = runctx.From(thread)
	}
	apply := op.Apply
	op.Apply = func(ctx context.Context) (journal.Change, error) {
		if err := h.c.alive(); err != nil {
			return journal.Change{}, err
		}
		return apply(ctx)
	}
	if op.Check != nil {
		check := op.Check
		op.Check = func(ctx context.Context) (journal.Change, error) {
			if err := h.c.alive(); err != nil {
				return journal.Change{}, err
			}
			return check(ctx)
		}
	}
	return r.Journal.Do(r.Ctx, op)
}

// errorf prefixes an error with the builtin's and the host's name.
func (h *host) errorf(b *starlark.Builtin, format string, args ...any) error {
	return starkit.Errorf(b.Name(), "%s: %w", h.name, fmt.Errorf(format, args...))
}

// wrap prefixes err with the builtin's and the host's name.
func (h *host) wrap(b *starlark.Builtin, err error) error {
	return starkit.Errorf(b.Name(), "%s: %w", h.name, err)
}

func receiver(b *starlark.Builtin) *host { return b.Receiver().(*host) }
