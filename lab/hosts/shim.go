package hosts

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed shim.sh
var shimScript []byte

const (
	shimPath     = "/usr/local/lib/mno-lab/shim"
	shimDir      = "/var/lib/mno-shims"
	shimLog      = "/var/log/mno-shims.log"
	shimTokenMax = 200
)

// ShimResponse is what a shim prints and the code it exits with.
type ShimResponse struct {
	Stdout string
	Stderr string
	Code   int
	// Script, if set, is a POSIX sh script the shim runs (as the caller,
	// inside the host) in place of answering with Code: it gets the call's
	// arguments as "$@", its stdin, stdout and stderr, and its exit code is
	// the shim's (and the recorded one). Stdout and Stderr are printed after
	// it. The call is recorded as any other. `mno lab` runs Traefik and the
	// k3s agent this way; a script that starts a daemon must redirect the
	// daemon's descriptors and setsid it, or the caller's session waits.
	Script string
}

// ShimCall is one recorded invocation of a shim.
type ShimCall struct {
	Time time.Time `json:"time"`
	// User ran the command; SudoUser is set when it ran through sudo.
	User     string `json:"user"`
	SudoUser string `json:"sudo_user,omitempty"`
	// Argv[0] is the command's name ("apt-get"), not the shim's path.
	Argv []string `json:"argv"`
	// Code is the exit code the shim returned.
	Code        int    `json:"code"`
	StdinSHA256 string `json:"stdin_sha256"`
	StdinLen    int64  `json:"stdin_len"`
	// Stdin is recorded only with FullShimStdin.
	Stdin []byte `json:"stdin,omitempty"`
}

var plainTokenRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._+,=@:-]+$`) })

// shimToken names one argv element as a path component, as shim.sh's tok does.
func shimToken(s string) string {
	if s != "." && s != ".." && plainTokenRE().MatchString(s) {
		return "a_" + s
	}
	return "x_" + hex.EncodeToString([]byte(s))
}

func checkShimName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(shimToken(name)) > shimTokenMax {
		return fmt.Errorf("hosts: bad shim name %q", name)
	}
	return nil
}

// installShims writes the shim script and its links into the template layer.
func installShims(u *layer, img *image) error {
	if err := u.writeFile(shimPath, shimScript, 0o755, 0, 0); err != nil {
		return err
	}
	if err := u.mkdir(shimDir+"/responses", 0o755, 0, 0); err != nil {
		return err
	}
	if img.fullStdin {
		if err := u.writeFile(shimDir+"/full-stdin", nil, 0o644, 0, 0); err != nil {
			return err
		}
	}
	// Every user's shim appends to the log.
	if err := u.writeFile(shimLog, nil, 0o666, 0, 0); err != nil {
		return err
	}
	for _, name := range img.shims {
		for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin"} {
			if err := u.symlink(shimPath, dir+"/"+name); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
	}
	return nil
}

// SetShim sets what a shim answers from now on when its argv starts with the
// words of key: "tailscale" for every call, "tailscale ip -4" for that one; the
// longest matching key wins. The command becomes a shim if it was not one.
func (h *Host) SetShim(key string, r ShimResponse) error {
	words := strings.Fields(key)
	if len(words) == 0 {
		return fmt.Errorf("hosts: %s: empty shim key", h.Name)
	}
	if err := checkShimName(words[0]); err != nil {
		return err
	}
	if r.Code < 0 || r.Code > 255 {
		return fmt.Errorf("hosts: %s: shim exit code %d out of 0..255", h.Name, r.Code)
	}
	dir := shimDir + "/responses"
	for _, w := range words {
		t := shimToken(w)
		if len(t) > shimTokenMax {
			return fmt.Errorf("hosts: %s: shim key word %.20q… too long", h.Name, w)
		}
		dir += "/" + t
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin"} {
		if err := h.symlinkIn(shimPath, d+"/"+words[0]); err != nil {
			return fmt.Errorf("hosts: %s: installing shim: %w", h.Name, err)
		}
	}
	if err := h.mkdirAllIn(dir, 0o755); err != nil {
		return fmt.Errorf("hosts: %s: %w", h.Name, err)
	}
	data := fmt.Appendf(nil, "%d %d %d %d\n%s%s%s", r.Code, len(r.Stdout), len(r.Stderr), len(r.Script), r.Stdout, r.Stderr, r.Script)
	return h.WriteFile(dir+"/.r", data, 0o644)
}

// ShimCalls returns every shim call recorded on the host so far, oldest first.
func (h *Host) ShimCalls() ([]ShimCall, error) {
	data, err := h.ReadFile(shimLog)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var calls []ShimCall
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var c ShimCall
		if err := json.Unmarshal(line, &c); err != nil {
			return calls, fmt.Errorf("hosts: %s:%s:%d: %w", h.Name, shimLog, i+1, err)
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// ClearShimCalls empties the host's shim log, e.g. between two runs of a playbook.
func (h *Host) ClearShimCalls() error {
	return h.WriteFile(shimLog, nil, 0o666)
}
