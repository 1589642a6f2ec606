package ssh

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mno-sh/mno/internal/shellquote"

	xssh "golang.org/x/crypto/ssh"
)

// killGrace is how long a timed-out command gets between SIGTERM and SIGKILL.
const killGrace = 2 * time.Second

// backstop is how long after its timeout a command that still has not
// returned is abandoned by closing its session (the remote `timeout` kills
// it; this only guards against a host that stopped answering).
const backstop = 10 * time.Second

// remoteCmd is a command to run on a host.
type remoteCmd struct {
	// line is a shell command line for the login user's shell (argv lists
	// are quoted into one by the caller).
	line string
	// argv, when set, is run as is (no login shell parsing of its words).
	argv      []string
	sudo      bool
	env       map[string]string
	secretEnv map[string]bool
	stdin     []byte
	// timeout kills the command and its process group; 0 means none.
	timeout time.Duration
}

var envNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// build returns the command line sshd gives the login shell and the bytes
// sent on stdin ahead of the caller's.
//
// Plain env values are exported on the command line. Secret values never
// appear in any argv (ps, /proc/*/cmdline): the command line reads them from
// stdin first, one base64 line each with `IFS= read -r` (a shell builtin),
// decodes them through a pipe and exports them before exec'ing the command,
// which then reads the rest of stdin as its own. Under sudo (which resets the
// environment) all of this happens in the root shell. `timeout -k` kills the
// command's whole process group when the time is up.
func (rc remoteCmd) build() (line string, prefix []byte, err error) {
	keys := make([]string, 0, len(rc.env))
	for k := range rc.env {
		if !envNameRE().MatchString(k) {
			return "", nil, fmt.Errorf("env: %q is not a valid variable name", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var steps []string
	var pre bytes.Buffer
	for _, k := range keys {
		if rc.secretEnv[k] {
			continue
		}
		steps = append(steps, "export "+k+"="+shellquote.Quote(rc.env[k]))
	}
	for _, k := range keys {
		if !rc.secretEnv[k] {
			continue
		}
		steps = append(steps,
			"IFS= read -r __mno_v",
			k+`=$(printf %s "$__mno_v" | base64 -d && echo .)`,
			k+"=${"+k+"%.}",
			"export "+k)
		pre.WriteString(base64.StdEncoding.EncodeToString([]byte(rc.env[k])))
		pre.WriteByte('\n')
	}
	if len(steps) > 0 && pre.Len() > 0 {
		steps = append(steps, "unset __mno_v")
	}
	if rc.argv != nil {
		if len(steps) == 0 && rc.timeout == 0 {
			if rc.sudo {
				return "exec sudo -n -- " + shellquote.Join(rc.argv), nil, nil
			}
			return "exec " + shellquote.Join(rc.argv), nil, nil
		}
		rc.line = shellquote.Join(rc.argv)
	}
	shell := `"${SHELL:-/bin/sh}"`
	if rc.sudo {
		shell = "/bin/sh"
	}
	run := "exec "
	if rc.timeout > 0 {
		run += "timeout -k " + seconds(killGrace) + " " + seconds(rc.timeout) + " "
	}
	run += shell + " -c " + shellquote.Quote(rc.line)
	if len(steps) == 0 && rc.timeout == 0 && !rc.sudo {
		return rc.line, nil, nil
	}
	script := strings.Join(append(steps, run), " && ")
	if rc.sudo {
		return "exec sudo -n -- /bin/sh -c " + shellquote.Quote(script), pre.Bytes(), nil
	}
	return script, pre.Bytes(), nil
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// execOut is what a remote command produced.
type execOut struct {
	stdout, stderr []byte
	code           int
	timedOut       bool
}

// exec runs rc and waits for it. A non-zero exit is not an error (see
// code); losing the connection is an Unreachable error.
func (c *conn) exec(ctx context.Context, rc remoteCmd) (execOut, error) {
	var out execOut
	line, prefix, err := rc.build()
	if err != nil {
		return out, err
	}
	s, release, err := c.session(ctx)
	if err != nil {
		return out, err
	}
	defer release()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	stdin, err := s.StdinPipe()
	if err != nil {
		return out, c.opErr(err)
	}
	start := time.Now()
	if err := s.Start(line); err != nil {
		return out, c.opErr(err)
	}
	go func() {
		// Errors here mean the command exited without reading all of its
		// stdin, which its exit status reports.
		if len(prefix) > 0 {
			stdin.Write(prefix)
		}
		if len(rc.stdin) > 0 {
			stdin.Write(rc.stdin)
		}
		stdin.Close()
	}()
	waitErr, timedOut, err := await(ctx, s, rc.timeout)
	if err != nil {
		if timedOut {
			out.timedOut, out.code = true, -1
		}
		return out, err
	}
	out.stdout, out.stderr = stdout.Bytes(), stderr.Bytes()
	return c.exitOf(out, waitErr, rc.timeout, time.Since(start))
}

// await waits for s to exit and returns what Wait did. err is set when it
// was killed instead: ctx was cancelled, or (timedOut) it outlived its
// timeout by killGrace and backstop.
func await(ctx context.Context, s *xssh.Session, timeout time.Duration) (waitErr error, timedOut bool, err error) {
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	var limit <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout + killGrace + backstop)
		defer t.Stop()
		limit = t.C
	}
	select {
	case err := <-waited:
		return err, false, nil
	case <-ctx.Done():
		s.Signal(xssh.SIGKILL)
		s.Close()
		return nil, false, fmt.Errorf("command cancelled: %v", context.Cause(ctx))
	case <-limit:
		s.Signal(xssh.SIGKILL)
		s.Close()
		return nil, true, fmt.Errorf("timed out after %s and did not return (killed)", timeout)
	}
}

// exitOf fills in out's exit code from Wait's error, and whether the
// command ran into its timeout (it ran for took).
func (c *conn) exitOf(out execOut, waitErr error, timeout, took time.Duration) (execOut, error) {
	var ee *xssh.ExitError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &ee):
		out.code = ee.ExitStatus()
	default:
		out.code = -1
		return out, c.opErr(fmt.Errorf("remote command: %w", waitErr))
	}
	// coreutils timeout exits 124 after SIGTERM, 137 after SIGKILL.
	if timeout > 0 && (out.code == 124 || out.code == 137) && took >= timeout {
		out.timedOut = true
	}
	return out, nil
}

// sudoRefusal recognises sudo asking for a password (or refusing the user)
// and explains what to set up.
func sudoRefusal(user, host string, stderr []byte) error {
	s := string(stderr)
	switch {
	case strings.Contains(s, "sudo: a password is required"), strings.Contains(s, "sudo: a terminal is required"),
		strings.Contains(s, "no tty present"):
		return fmt.Errorf("sudo on %s asks user %q for a password, and mno never answers prompts: grant passwordless sudo with "+
			"a file in /etc/sudoers.d (e.g. %q, checked with visudo -c), as `mno bootstrap` sets up", host, user,
			user+" ALL=(ALL:ALL) NOPASSWD: ALL")
	case strings.Contains(s, "is not in the sudoers file"), strings.Contains(s, "is not allowed to"):
		return fmt.Errorf("user %q may not use sudo on %s: grant passwordless sudo with a file in /etc/sudoers.d (e.g. %q), as `mno bootstrap` sets up",
			user, host, user+" ALL=(ALL:ALL) NOPASSWD: ALL")
	case strings.Contains(s, "sudo: command not found"), strings.Contains(s, "sudo: not found"):
		return fmt.Errorf("sudo is not installed on %s (install it, or connect as root)", host)
	}
	return nil
}

// refusal is sudoRefusal for a command rc that ran under sudo and failed;
// nil for any other.
func (h *host) refusal(rc remoteCmd, out execOut) error {
	if !rc.sudo || out.code == 0 {
		return nil
	}
	return sudoRefusal(h.user, h.name, out.stderr)
}

// label is how the journal names rc, given how its command reads.
func (rc remoteCmd) label(desc string) string {
	if rc.sudo {
		return "sudo " + desc
	}
	return desc
}
