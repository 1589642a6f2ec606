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
	cmd, env, secretEnv, stdin, check, readOnly, creates, unlessCmd := a.Cmd, a.Env, a.SecretEnv, a.Stdin, a.Check, a.ReadOnly, a.Creates, a.Unless
	timeout := starkit.Duration{D: a.Timeout}
	line := cmd.Shell
	if line == "" {
		line = shellquote.Join(cmd.Argv)
	}
	rc := remoteCmd{line: line, sudo: sudo, env: env, secretEnv: secretEnv, stdin: []byte(stdin), timeout: timeout.D}
	if _, _, err := rc.build(); err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}

	r := runctx.From(thread)
	desc := a.Describe()
	if sudo {
		desc = "sudo " + desc
	}
	var res starkit.ExecResult
	res.SecretOutput = a.SecretOutput
	op := journal.Op{
		Kind: "run", Desc: desc, Write: !readOnly,
		Apply: func(ctx context.Context) (journal.Change, error) {
			out, err := h.c.exec(ctx, rc)
			res.Stdout, res.Stderr, res.Code = string(out.stdout), string(out.stderr), out.code
			if err != nil {
				return journal.Change{}, fmt.Errorf("command %s: %w", desc, err)
			}
			if sudo && out.code != 0 {
				if err := sudoRefusal(h.user, h.name, out.stderr); err != nil {
					return journal.Change{}, err
				}
			}
			if out.timedOut {
				return journal.Change{}, fmt.Errorf("command %s timed out after %s (killed with its process group)", desc, timeout.D)
			}
			if out.code != 0 && check {
				return journal.Change{}, starkit.ExitError(desc, out.code, r.Redactor.Redact(res.Stderr))
			}
			return journal.Change{Changed: !readOnly && out.code == 0}, nil
		},
	}
	if creates != "" || unlessCmd != nil {
		op.Check = func(ctx context.Context) (journal.Change, error) {
			if creates != "" {
				ok, err := h.pathExists(ctx, creates, sudo)
				if err != nil {
					return journal.Change{}, fmt.Errorf("creates: %w", err)
				}
				if ok {
					return journal.Change{Note: "skipped: " + creates + " exists"}, nil
				}
			}
			if unlessCmd != nil {
				u := rc
				u.line, u.stdin = unlessCmd.Shell, nil
				if u.line == "" {
					u.line = shellquote.Join(unlessCmd.Argv)
				}
				out, err := h.c.exec(ctx, u)
				if err != nil {
					return journal.Change{}, fmt.Errorf("unless: %w", err)
				}
				if sudo && out.code != 0 {
					if err := sudoRefusal(h.user, h.name, out.stderr); err != nil {
						return journal.Change{}, err
					}
				}
				if out.timedOut {
					return journal.Change{}, fmt.Errorf("unless: timed out after %s (killed)", timeout.D)
				}
				if out.code == 0 {
					return journal.Change{Note: "skipped: unless succeeded"}, nil
				}
			}
			return journal.Change{Changed: true}, nil
		}
	}
	out, err := h.do(thread, op)
	if err != nil {
		return nil, h.wrap(b, err)
	}
	res.Changed = out.Changed
	res.Simulated = out.Simulated
	return res.Value(r.Secret), nil
}
