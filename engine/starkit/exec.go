package starkit

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mno-sh/mno/internal/shellquote"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/secret"
)

// ExecResult is the result of a command, local or remote.
type ExecResult struct {
	Stdout, Stderr string
	Code           int
	Changed        bool
	Simulated      bool
	// SecretOutput makes stdout a secret (e.g. reading a token).
	SecretOutput bool
}

// Value returns the Starlark struct scripts see.
func (r ExecResult) Value(newSecret func(string) *secret.Secret) starlark.Value {
	var stdout starlark.Value = starlark.String(r.Stdout)
	if r.SecretOutput {
		stdout = newSecret(r.Stdout)
	}
	return starlarkstruct.FromStringDict(starlark.String("result"), starlark.StringDict{
		"stdout":    stdout,
		"stderr":    starlark.String(r.Stderr),
		"code":      starlark.MakeInt(r.Code),
		"ok":        starlark.Bool(r.Code == 0),
		"changed":   starlark.Bool(r.Changed),
		"simulated": starlark.Bool(r.Simulated),
	})
}

// Tail returns the last lines of s (at most n lines and 2 KiB), for errors.
func Tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if len(s) > 2048 {
		s = "…" + s[len(s)-2048:]
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// ExitError describes a command that exited non-zero.
func ExitError(desc string, code int, stderr string) error {
	msg := fmt.Sprintf("command %s exited %d", desc, code)
	if t := Tail(stderr, 10); t != "" {
		msg += ": " + t
	}
	return fmt.Errorf("%s", msg)
}

// DescribeCommand renders a command for the journal: the shell string or the
// quoted argv, plus which env keys and stdin it gets (never their values when
// secret).
func DescribeCommand(c Command, env map[string]string, secretEnv map[string]bool, stdinLen int, stdinSecret bool) string {
	var b strings.Builder
	if c.Shell != "" {
		b.WriteString(c.Shell)
	} else {
		b.WriteString(shellquote.Join(c.Argv))
	}
	if len(env) > 0 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" [env: " + strings.Join(keys, " ") + "]")
	}
	switch {
	case stdinSecret:
		b.WriteString(" [stdin: " + secret.Placeholder + "]")
	case stdinLen > 0:
		fmt.Fprintf(&b, " [stdin: %d bytes]", stdinLen)
	}
	return b.String()
}

// RunArgs are the parameters local.run and host.run share.
type RunArgs struct {
	Cmd          Command
	Stdin        string
	StdinSecret  bool
	Env          map[string]string
	SecretEnv    map[string]bool
	Timeout      time.Duration
	Check        bool
	ReadOnly     bool
	Creates      string
	Unless       *Command // nil when not given
	SecretOutput bool
}

// UnpackRunArgs unpacks cmd, stdin, env, timeout, check, read_only, creates,
// unless and secret_output, plus the builtin's own extra pairs ("name?",
// pointer) after them, e.g. "sudo?" for host.run.
func UnpackRunArgs(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, extra ...any) (*RunArgs, error) {
	a := &RunArgs{Check: true}
	var (
		stdinV  starlark.Value = starlark.None
		envV    starlark.Value = starlark.None
		unlessV starlark.Value = starlark.None
		timeout                = Duration{D: 5 * time.Minute}
	)
	pairs := append([]any{"cmd", &a.Cmd, "stdin?", &stdinV, "env?", &envV, "timeout?", &timeout,
		"check?", &a.Check, "read_only?", &a.ReadOnly, "creates?", &a.Creates, "unless?", &unlessV,
		"secret_output?", &a.SecretOutput}, extra...)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, pairs...); err != nil {
		return nil, err
	}
	a.Timeout = timeout.D
	var err error
	if a.Env, a.SecretEnv, err = SecretDict("env", envV); err != nil {
		return nil, Errorf(b.Name(), "%v", err)
	}
	if stdinV != starlark.None {
		if a.Stdin, a.StdinSecret, err = secret.Text(stdinV); err != nil {
			return nil, Errorf(b.Name(), "stdin: %v", err)
		}
	}
	if unlessV != starlark.None {
		a.Unless = new(Command)
		if err := a.Unless.Unpack(unlessV); err != nil {
			return nil, Errorf(b.Name(), "unless: %v", err)
		}
	}
	return a, nil
}

// Describe renders the command for the journal (DescribeCommand).
func (a *RunArgs) Describe() string {
	return DescribeCommand(a.Cmd, a.Env, a.SecretEnv, len(a.Stdin), a.StdinSecret)
}
