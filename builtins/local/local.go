package local

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Target is the journal target name of the control plane itself.
const Target = "local"

// Module returns the local module.
func Module() starkit.Module {
	return starkit.Module{
		Name: "local",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"local": &starlarkstruct.Module{Name: "local", Members: starlark.StringDict{
			"run":  starlark.NewBuiltin("local.run", run),
			"read": starlark.NewBuiltin("local.read", read),
			"env":  starlark.NewBuiltin("local.env", env),
		}}},
	}
}

func run(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dir string
	a, err := starkit.UnpackRunArgs(b, args, kwargs, "dir?", &dir)
	if err != nil {
		return nil, err
	}
	cmd, stdin, env, timeout, check, readOnly, creates, unlessCmd := a.Cmd, a.Stdin, a.Env, a.Timeout, a.Check, a.ReadOnly, a.Creates, a.Unless

	r := runctx.From(thread)
	desc := a.Describe()
	var res starkit.ExecResult
	res.SecretOutput = a.SecretOutput
	op := journal.Op{
		Target: Target, Kind: "run", Desc: desc, Pos: starkit.CallerPos(thread), Write: !readOnly,
		Apply: func(ctx context.Context) (journal.Change, error) {
			out, errOut, code, err := execute(ctx, cmd, stdin, env, dir, timeout)
			res.Stdout, res.Stderr, res.Code = out, errOut, code
			if err != nil {
				return journal.Change{}, err
			}
			if code != 0 && check {
				return journal.Change{}, starkit.ExitError(desc, code, r.Redactor.Redact(errOut))
			}
			return journal.Change{Changed: !readOnly && code == 0}, nil
		},
	}
	if creates != "" || unlessCmd != nil {
		op.Check = func(ctx context.Context) (journal.Change, error) {
			if creates != "" {
				if _, err := os.Stat(creates); err == nil {
					return journal.Change{Note: "skipped: " + creates + " exists"}, nil
				}
			}
			if unlessCmd != nil {
				_, _, code, err := execute(ctx, *unlessCmd, "", env, dir, timeout)
				if err != nil {
					return journal.Change{}, fmt.Errorf("unless: %v", err)
				}
				if code == 0 {
					return journal.Change{Note: "skipped: unless succeeded"}, nil
				}
			}
			return journal.Change{Changed: true}, nil
		}
	}
	out, err := r.Journal.Do(r.Ctx, op)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	res.Changed = out.Changed
	res.Simulated = out.Simulated
	return res.Value(r.Secret), nil
}

// execute runs the command in its own process group, killed on cancel.
func execute(ctx context.Context, c starkit.Command, stdin string, env map[string]string, dir string, timeout time.Duration) (string, string, int, error) {
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var cmd *exec.Cmd
	if c.Shell != "" {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", c.Shell)
	} else {
		cmd = exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		go func() {
			time.Sleep(500 * time.Millisecond)
			syscall.Kill(-pgid, syscall.SIGKILL)
		}()
		return nil
	}
	cmd.WaitDelay = time.Second
	if len(env) > 0 {
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if parent.Err() != nil {
		return stdout.String(), stderr.String(), -1, fmt.Errorf("command cancelled (killed): %v", context.Cause(parent))
	}
	if ctx.Err() != nil {
		return stdout.String(), stderr.String(), -1, fmt.Errorf("command timed out after %s (killed)", timeout)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return stdout.String(), stderr.String(), exitErr.ExitCode(), nil
	}
	if err != nil {
		return stdout.String(), stderr.String(), -1, err
	}
	return stdout.String(), stderr.String(), 0, nil
}

func read(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var secretArg starlark.Value = starlark.None
	var missingOK bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "secret?", &secretArg, "missing_ok?", &missingOK); err != nil {
		return nil, err
	}
	var isSecret, auto bool
	switch v := secretArg.(type) {
	case starlark.NoneType:
		auto = true
	case starlark.Bool:
		isSecret = bool(v)
	default:
		return nil, starkit.Errorf(b.Name(), "secret: got %s, want bool or None", secretArg.Type())
	}
	r := runctx.From(thread)
	var data []byte
	var missing bool
	_, err := r.Journal.Do(r.Ctx, journal.Op{
		Target: Target, Kind: "read", Desc: path, Pos: starkit.CallerPos(thread),
		Apply: func(context.Context) (journal.Change, error) {
			f, err := os.Open(path)
			if errors.Is(err, fs.ErrNotExist) && missingOK {
				missing = true
				return journal.Change{Note: "missing"}, nil
			}
			if err != nil {
				return journal.Change{}, err
			}
			defer f.Close()
			// A file others may not read (the join token, k3s.yaml) is secret
			// material unless the script says secret=False.
			if fi, err := f.Stat(); err == nil && auto && fi.Mode().Perm()&0o004 == 0 {
				isSecret = true
			}
			data, err = io.ReadAll(f)
			note := ""
			if isSecret {
				note = "secret"
			}
			return journal.Change{Note: note}, err
		},
	})
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	if missing {
		return starlark.None, nil
	}
	if isSecret {
		return r.Secret(string(data)), nil
	}
	return starlark.String(data), nil
}

func env(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var def starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return nil, starkit.Errorf(b.Name(), "%q is not an environment variable name", name)
	}
	if v := runctx.From(thread).Config.Getenv(name); v != "" {
		return starlark.String(v), nil
	}
	return def, nil
}
