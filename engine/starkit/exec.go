package starkit

import (
	"fmt"
	"sort"
	"strings"

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
		b.WriteString(ShellJoin(c.Argv))
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
