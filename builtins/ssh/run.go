package ssh

import (
	"context"
	"fmt"

	"github.com/mno-sh/mno/internal/shellquote"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

func hostRun(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := receiver(b)
	var sudo bool
	a, err := starkit.UnpackRunArgs(b, args, kwargs, "sudo?", &sudo)
	if err != nil {
		return nil, err
	}
	line := a.Cmd.Shell
	if line == "" {
		line = shellquote.Join(a.Cmd.Argv)
	}
	rc := remoteCmd{line: line, sudo: sudo, env: a.Env, secretEnv: a.SecretEnv, stdin: []byte(a.Stdin), timeout: a.Timeout}
	if _, _, err := rc.build(); err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	r := runctx.From(thread)
	hr := &hostRunOp{h: h, rc: rc, fs: h.fs(sudo), desc: rc.label(a.Describe()), args: a, redact: r.Redactor.Redact}
	hr.res.SecretOutput = a.SecretOutput
	op := journal.Op{Kind: "run", Desc: hr.desc, Write: !a.ReadOnly, Apply: hr.apply}
	if a.Creates != "" || a.Unless != nil {
		op.Check = hr.check
	}
	out, err := h.do(thread, op)
	if err != nil {
		return nil, h.wrap(b, err)
	}
	hr.res.Changed = out.Changed
	hr.res.Simulated = out.Simulated
	return hr.res.Value(r.Secret), nil
}

// hostRunOp is one host.run, from its Check (creates=, unless=) to its
// Apply.
type hostRunOp struct {
	h      *host
	rc     remoteCmd
	fs     remoteFS // for creates=
	desc   string
	args   *starkit.RunArgs
	redact func(string) string
	res    starkit.ExecResult
}

func (hr *hostRunOp) apply(ctx context.Context) (journal.Change, error) {
	out, err := hr.h.c.exec(ctx, hr.rc)
	hr.res.Stdout, hr.res.Stderr, hr.res.Code = string(out.stdout), string(out.stderr), out.code
	if err != nil {
		return journal.Change{}, fmt.Errorf("command %s: %w", hr.desc, err)
	}
	if err := hr.h.refusal(hr.rc, out); err != nil {
		return journal.Change{}, err
	}
	if out.timedOut {
		return journal.Change{}, fmt.Errorf("command %s timed out after %s (killed with its process group)", hr.desc, hr.rc.timeout)
	}
	if out.code != 0 && hr.args.Check {
		return journal.Change{}, starkit.ExitError(hr.desc, out.code, hr.redact(hr.res.Stderr))
	}
	return journal.Change{Changed: !hr.args.ReadOnly && out.code == 0}, nil
}

// check skips the command when creates= exists or unless= succeeds.
func (hr *hostRunOp) check(ctx context.Context) (journal.Change, error) {
	if creates := hr.args.Creates; creates != "" {
		info, err := hr.fs.stat(ctx, creates, true)
		if err != nil {
			return journal.Change{}, fmt.Errorf("creates: %w", err)
		}
		if info != nil {
			return journal.Change{Note: "skipped: " + creates + " exists"}, nil
		}
	}
	if unless := hr.args.Unless; unless != nil {
		u := hr.rc
		u.line, u.stdin = unless.Shell, nil
		if u.line == "" {
			u.line = shellquote.Join(unless.Argv)
		}
		out, err := hr.h.c.exec(ctx, u)
		if err != nil {
			return journal.Change{}, fmt.Errorf("unless: %w", err)
		}
		if err := hr.h.refusal(u, out); err != nil {
			return journal.Change{}, err
		}
		if out.timedOut {
			return journal.Change{}, fmt.Errorf("unless: timed out after %s (killed)", u.timeout)
		}
		if out.code == 0 {
			return journal.Change{Note: "skipped: unless succeeded"}, nil
		}
	}
	return journal.Change{Changed: true}, nil
}
