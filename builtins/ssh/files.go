package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/engine/starkit"
)

// optString unpacks a string or None ("" for None).
type optString struct{ s string }

func (o *optString) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.NoneType:
		return nil
	case starlark.String:
		o.s = string(x)
		return nil
	}
	return fmt.Errorf("got %s, want string or None", v.Type())
}

func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is not absolute", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains a NUL byte", p)
	}
	return nil
}

func parentDir(p string) string { return path.Dir(path.Clean(p)) }

func describePath(p string, sudo bool) string {
	if sudo {
		return p + " (sudo)"
	}
	return p
}

// statPath stats p with owner and group names; nil when missing.
func (h *host) statPath(ctx context.Context, p string, sudo, follow bool) (*fileInfo, error) {
	if sudo {
		pr, err := h.shellProbe(ctx, p, -1, -1, follow)
		return pr.info, err
	}
	info, err := h.sftpStat(p, !follow)
	if err != nil || info == nil {
		return nil, err
	}
	return info, h.fillNames(ctx, info)
}

func (h *host) pathExists(ctx context.Context, p string, sudo bool) (bool, error) {
	info, err := h.statPath(ctx, p, sudo, true)
	return info != nil, err
}

// fnError carries an error of a Starlark callback through the journal, so
// the script sees it with its own backtrace.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

// writeFile is put and edit: plan computes the wanted file from the live
// one; Check compares (reads only) and reports the diff, Apply writes
// atomically.
func (h *host) writeFile(thread *starlark.Thread, b *starlark.Builtin, kind, p string, sudo bool, limit, sumSize int64,
	plan func(pr *probe) (*writeSpec, error)) (starlark.Value, error) {
	var pr probe
	var w *writeSpec
	var ch journal.Change
	// With sudo, the probe's root shell stays open for the write (one sudo
	// per changed file, not two); it ends here unless it wrote.
	var ed *shellEdit
	defer func() { ed.close() }()
	out, err := h.do(thread, journal.Op{
		Kind: kind, Desc: describePath(p, sudo), Write: true,
		Check: func(ctx context.Context) (journal.Change, error) {
			var err error
			if sudo {
				ed, pr, err = h.shellEditProbe(ctx, p, limit, sumSize)
			} else {
				pr, err = h.sftpProbe(ctx, p, limit, sumSize)
			}
			if err != nil {
				return journal.Change{}, err
			}
			if pr.info != nil && !pr.info.isRegular {
				return journal.Change{}, fmt.Errorf("%s exists and is not a regular file", p)
			}
			if w, err = plan(&pr); err != nil {
				return journal.Change{}, err
			}
			ch, err = h.compare(ctx, p, sudo, &pr, w)
			if err == nil && ed != nil && ed.helper {
				note := "via " + HostsHelperPath + ": the laptop sudo rule"
				if ch.Note != "" {
					note = ch.Note + "; " + note
				}
				ch.Note = note
			}
			return ch, err
		},
		Apply: func(ctx context.Context) (journal.Change, error) {
			if pr.dirMissing {
				return journal.Change{}, fmt.Errorf("%s: directory %s does not exist (create it with host.mkdir)", p, parentDir(p))
			}
			var err error
			if sudo {
				err = ed.write(ctx, p, pr.info, w)
			} else {
				err = h.sftpWrite(ctx, p, &pr, w)
			}
			if err != nil {
				return journal.Change{}, err
			}
			return ch, nil
		},
	})
	if err != nil {
		var fe *fnError
		if errors.As(err, &fe) {
			return nil, fe.err
		}
		return nil, h.wrap(b, err)
	}
	return starlark.Bool(out.Changed), nil
}

// compare says what writing w over the probed file would change.
func (h *host) compare(ctx context.Context, p string, sudo bool, pr *probe, w *writeSpec) (journal.Change, error) {
	if pr.info == nil {
		ch := journal.Change{Changed: true, Diff: contentDiff(p, pr, w), Note: "new file", Pre: "absent"}
		isDir := pr.dirExists
		if !pr.dirKnown {
			// Only whether it is a directory matters: no owner names.
			var dir *fileInfo
			var err error
			if sudo {
				dir, err = h.statPath(ctx, parentDir(p), sudo, true)
			} else {
				dir, err = h.sftpStat(parentDir(p), false)
			}
			if err != nil {
				return ch, err
			}
			isDir = dir != nil && dir.isDir
		}
		if !isDir {
			pr.dirMissing = true
			ch.Note = "directory " + parentDir(p) + " does not exist"
		}
		return ch, nil
	}
	same := false
	switch {
	case pr.full:
		same = bytes.Equal(pr.content, w.content)
	case pr.sum != "":
		sum := sha256.Sum256(w.content)
		same = pr.sum == hex.EncodeToString(sum[:])
	}
	var notes []string
	if pr.info.mode != w.mode {
		notes = append(notes, fmt.Sprintf("mode %s → %s", octal(pr.info.mode), octal(w.mode)))
	}
	for _, g := range []bool{false, true} {
		want := w.owner
		if g {
			want = w.group
		}
		ok, err := h.idMatches(ctx, pr.info, g, want)
		if err != nil {
			return journal.Change{}, err
		}
		if !ok {
			if err := h.fillNames(ctx, pr.info); err != nil && !sudo {
				return journal.Change{}, err
			}
			was, what := pr.info.owner, "owner"
			if g {
				was, what = pr.info.group, "group"
			}
			notes = append(notes, fmt.Sprintf("%s %s → %s", what, was, want))
		}
	}
	ch := journal.Change{Changed: !same || len(notes) > 0, Note: strings.Join(notes, ", ")}
	switch {
	case pr.full:
		sum := sha256.Sum256(pr.content)
		ch.Pre = "sha256:" + hex.EncodeToString(sum[:])
	case pr.sum != "":
		ch.Pre = "sha256:" + pr.sum
	}
	if !same {
		ch.Diff = contentDiff(p, pr, w)
	}
	return ch, nil
}

// contentDiff is the unified diff from the probed content to w's; secret
// content is never shown, only that it changes.
func contentDiff(p string, pr *probe, w *writeSpec) string {
	var oldLen int64
	if pr.info != nil {
		oldLen = pr.info.size
	}
	switch {
	case w.secret:
		return fmt.Sprintf("--- %s\n+++ %s\nsecret content %s (%d bytes → %d bytes)\n", p, p, secret.Placeholder, oldLen, len(w.content))
	case pr.info != nil && !pr.full:
		return fmt.Sprintf("--- %s\n+++ %s\nbinary or large content differs (%d bytes → %d bytes)\n", p, p, oldLen, len(w.content))
	}
	return journal.Diff(p, string(pr.content), string(w.content))
}

func hostPut(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := receiver(b)
	var (
		p            string
		content      starlark.Value
		mode         = starkit.Mode{M: 0o644, Set: true}
		owner, group optString
		sudo         bool
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "content", &content, "mode?", &mode,
		"owner?", &owner, "group?", &group, "sudo?", &sudo); err != nil {
		return nil, err
	}
	if err := checkPath(p); err != nil {
		return nil, h.errorf(b, "%v", err)
	}
	text, isSecret, err := secret.Text(content)
	if err != nil {
		return nil, h.errorf(b, "content: %v", err)
	}
	if !mode.Set {
		mode.M = 0o644
	}
	w := &writeSpec{content: []byte(text), secret: isSecret, mode: mode.M, owner: owner.s, group: group.s}
	return h.writeFile(thread, b, "put", p, sudo, compareLimit, int64(len(w.content)),
		func(*probe) (*writeSpec, error) { return w, nil })
}

func hostEdit(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := receiver(b)
	var (
		p      string
		fn     starlark.Callable
		sudo   bool
		create = true
		mode   starkit.Mode
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "fn", &fn, "sudo?", &sudo,
		"create?", &create, "mode?", &mode); err != nil {
		return nil, err
	}
	if err := checkPath(p); err != nil {
		return nil, h.errorf(b, "%v", err)
	}
	return h.writeFile(thread, b, "edit", p, sudo, noLimit, -1, func(pr *probe) (*writeSpec, error) {
		old := ""
		w := &writeSpec{mode: 0o644}
		if pr.info != nil {
			old = string(pr.content)
			w.mode = pr.info.mode
		} else if !create {
			return nil, fmt.Errorf("%s does not exist (and create=False)", p)
		}
		if mode.Set {
			w.mode = mode.M
		}
		v, err := starlark.Call(thread, fn, starlark.Tuple{starlark.String(old)}, nil)
		if err != nil {
			return nil, &fnError{err}
		}
		text, isSecret, err := secret.Text(v)
		if err != nil {
			return nil, fmt.Errorf("fn returned %s, want the new content (string, bytes or secret)", v.Type())
		}
		w.content, w.secret = []byte(text), isSecret
		return w, nil
	})
}

func hostGet(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := receiver(b)
	var (
		p         string
		sudo      bool
		missingOK bool
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "sudo?", &sudo, "missing_ok?", &missingOK); err != nil {
		return nil, err
	}
	if err := checkPath(p); err != nil {
		return nil, h.errorf(b, "%v", err)
	}
	var data []byte
	var missing bool
	_, err := h.do(thread, journal.Op{
		Kind: "get", Desc: describePath(p, sudo),
		Apply: func(ctx context.Context) (journal.Change, error) {
			if sudo {
				pr, err := h.shellProbe(ctx, p, noLimit, -1, true)
				if err != nil {
					return journal.Change{}, err
				}
				switch {
				case pr.info == nil:
					missing = true
				case !pr.info.isRegular:
					return journal.Change{}, fmt.Errorf("%s is not a regular file", p)
				default:
					data = pr.content
				}
			} else {
				var err error
				if data, missing, err = h.sftpRead(p); err != nil {
					return journal.Change{}, err
				}
			}
			if missing {
				if !missingOK {
					return journal.Change{}, fmt.Errorf("%s does not exist", p)
				}
				return journal.Change{Note: "missing"}, nil
			}
			return journal.Change{}, nil
		},
	})
	if err != nil {
		return nil, h.wrap(b, err)
	}
	if missing {
		return starlark.None, nil
	}
	return starlark.String(data), nil
}
