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

// fnError carries an error of a Starlark callback through the journal, so
// the script sees it with its own backtrace.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

// writeFile is put and edit: plan computes the wanted file from the live
// one; Check compares (reads only) and reports the diff, Apply writes
// atomically.
func (h *host) writeFile(thread *starlark.Thread, b *starlark.Builtin, kind, p string, fsys remoteFS, limit, sumSize int64,
	plan func(pr *probe) (*writeSpec, error)) (starlark.Value, error) {
	fw := &fileWrite{h: h, fs: fsys, p: p, limit: limit, sumSize: sumSize, plan: plan}
	// With sudo, the probe's root shell stays open for the write (one sudo
	// per changed file, not two); it ends here unless it wrote.
	defer fw.close()
	out, err := h.do(thread, journal.Op{Kind: kind, Desc: fsys.describe(p), Write: true, Check: fw.check, Apply: fw.apply})
	if err != nil {
		var fe *fnError
		if errors.As(err, &fe) {
			return nil, fe.err
		}
		return nil, h.wrap(b, err)
	}
	return starlark.Bool(out.Changed), nil
}

// fileWrite is one put or edit, from its Check to its Apply.
type fileWrite struct {
	h              *host
	fs             remoteFS
	p              string
	limit, sumSize int64
	plan           func(pr *probe) (*writeSpec, error)

	ed fileEdit // the probed file, waiting for the write
	pr probe
	w  *writeSpec
	ch journal.Change
}

// check probes the file, plans the wanted one and compares them.
func (fw *fileWrite) check(ctx context.Context) (journal.Change, error) {
	var err error
	if fw.ed, fw.pr, err = fw.fs.openEdit(ctx, fw.p, fw.limit, fw.sumSize); err != nil {
		return journal.Change{}, err
	}
	if fw.pr.info != nil && !fw.pr.info.isRegular {
		return journal.Change{}, fmt.Errorf("%s exists and is not a regular file", fw.p)
	}
	if fw.w, err = fw.plan(&fw.pr); err != nil {
		return journal.Change{}, err
	}
	fw.ch, err = fw.h.compare(ctx, fw.fs, fw.p, &fw.pr, fw.w)
	if note := fw.ed.note(); err == nil && note != "" {
		if fw.ch.Note != "" {
			note = fw.ch.Note + "; " + note
		}
		fw.ch.Note = note
	}
	return fw.ch, err
}

// apply writes the planned file.
func (fw *fileWrite) apply(ctx context.Context) (journal.Change, error) {
	if fw.pr.dirMissing {
		return journal.Change{}, fmt.Errorf("%s: directory %s does not exist (create it with host.mkdir)", fw.p, parentDir(fw.p))
	}
	if err := fw.ed.write(ctx, fw.p, &fw.pr, fw.w); err != nil {
		return journal.Change{}, err
	}
	return fw.ch, nil
}

func (fw *fileWrite) close() {
	if fw.ed != nil {
		fw.ed.close()
	}
}

// compare says what writing w over the probed file would change.
func (h *host) compare(ctx context.Context, fsys remoteFS, p string, pr *probe, w *writeSpec) (journal.Change, error) {
	if pr.info == nil {
		return compareNew(ctx, fsys, p, pr, w)
	}
	same := false
	switch {
	case pr.full:
		same = bytes.Equal(pr.content, w.content)
	case pr.sum != "":
		sum := sha256.Sum256(w.content)
		same = pr.sum == hex.EncodeToString(sum[:])
	}
	notes, err := h.attrNotes(ctx, fsys, pr.info, w.mode, w.owner, w.group)
	if err != nil {
		return journal.Change{}, err
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

// compareNew is compare for a missing file, which needs its directory.
func compareNew(ctx context.Context, fsys remoteFS, p string, pr *probe, w *writeSpec) (journal.Change, error) {
	ch := journal.Change{Changed: true, Diff: contentDiff(p, pr, w), Note: "new file", Pre: "absent"}
	isDir := pr.dirExists
	if !pr.dirKnown {
		var err error
		if isDir, err = fsys.isDir(ctx, parentDir(p)); err != nil {
			return ch, err
		}
	}
	if !isDir {
		pr.dirMissing = true
		ch.Note = "directory " + parentDir(p) + " does not exist"
	}
	return ch, nil
}

// attrNotes are the changes of mode, owner and group ("": any) from info,
// for put, edit and mkdir: "mode 0644 → 0600", "owner root → mno".
func (h *host) attrNotes(ctx context.Context, fsys remoteFS, info *fileInfo, mode uint32, owner, group string) ([]string, error) {
	var notes []string
	if info.mode != mode {
		notes = append(notes, fmt.Sprintf("mode %s → %s", octal(info.mode), octal(mode)))
	}
	for _, g := range []bool{false, true} {
		want := owner
		if g {
			want = group
		}
		ok, err := h.idMatches(ctx, info, g, want)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		if err := fsys.names(ctx, info); err != nil {
			return nil, err
		}
		was, what := info.owner, "owner"
		if g {
			was, what = info.group, "group"
		}
		notes = append(notes, fmt.Sprintf("%s %s → %s", what, was, want))
	}
	return notes, nil
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
	return h.writeFile(thread, b, "put", p, h.fs(sudo), compareLimit, int64(len(w.content)),
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
	return h.writeFile(thread, b, "edit", p, h.fs(sudo), noLimit, -1, func(pr *probe) (*writeSpec, error) {
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
	fsys := h.fs(sudo)
	var data []byte
	var missing bool
	_, err := h.do(thread, journal.Op{
		Kind: "get", Desc: fsys.describe(p),
		Apply: func(ctx context.Context) (journal.Change, error) {
			var err error
			if data, missing, err = fsys.read(ctx, p); err != nil {
				return journal.Change{}, err
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
