package ssh

import (
	"context"
	"fmt"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/starkit"
)

func (info *fileInfo) value() starlark.Value {
	return starlarkstruct.FromStringDict(starlark.String("stat"), starlark.StringDict{
		"exists": starlark.True,
		"is_dir": starlark.Bool(info.isDir),
		"size":   starlark.MakeInt64(info.size),
		"mode":   starlark.MakeUint(uint(info.mode)),
		"uid":    starlark.MakeInt(info.uid),
		"gid":    starlark.MakeInt(info.gid),
		"owner":  starlark.String(info.owner),
		"group":  starlark.String(info.group),
		"mtime":  starlark.MakeInt64(info.mtime),
	})
}

// statOp is the read behind stat and exists.
func statOp(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (*fileInfo, error) {
	h := receiver(b)
	var p string
	var sudo bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "sudo?", &sudo); err != nil {
		return nil, err
	}
	if err := checkPath(p); err != nil {
		return nil, h.errorf(b, "%v", err)
	}
	fsys := h.fs(sudo)
	var info *fileInfo
	_, err := h.do(thread, journal.Op{
		Kind: "stat", Desc: fsys.describe(p),
		Apply: func(ctx context.Context) (journal.Change, error) {
			var err error
			info, err = fsys.stat(ctx, p, true)
			if err == nil && info == nil {
				return journal.Change{Note: "missing"}, nil
			}
			return journal.Change{}, err
		},
	})
	if err != nil {
		return nil, h.wrap(b, err)
	}
	return info, nil
}

func hostStat(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	info, err := statOp(thread, b, args, kwargs)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return starlark.None, nil
	}
	return info.value(), nil
}

func hostExists(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	info, err := statOp(thread, b, args, kwargs)
	if err != nil {
		return nil, err
	}
	return starlark.Bool(info != nil), nil
}

func hostMkdir(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := receiver(b)
	var (
		p            string
		mode         = starkit.Mode{M: 0o755, Set: true}
		owner, group optString
		sudo         bool
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "mode?", &mode, "owner?", &owner,
		"group?", &group, "sudo?", &sudo); err != nil {
		return nil, err
	}
	if err := checkPath(p); err != nil {
		return nil, h.errorf(b, "%v", err)
	}
	if !mode.Set {
		mode.M = 0o755
	}
	fsys := h.fs(sudo)
	out, err := h.do(thread, journal.Op{
		Kind: "mkdir", Desc: fsys.describe(p), Write: true,
		Check: func(ctx context.Context) (journal.Change, error) {
			return h.mkdirChange(ctx, fsys, p, mode.M, owner.s, group.s)
		},
		Apply: func(ctx context.Context) (journal.Change, error) {
			if err := fsys.mkdir(ctx, p, mode.M, owner.s, group.s); err != nil {
				return journal.Change{}, err
			}
			return journal.Change{Changed: true}, nil
		},
	})
	if err != nil {
		return nil, h.wrap(b, err)
	}
	return starlark.Bool(out.Changed), nil
}

// mkdirChange says what making directory p with mode, owner and group
// would change.
func (h *host) mkdirChange(ctx context.Context, fsys remoteFS, p string, mode uint32, owner, group string) (journal.Change, error) {
	info, err := fsys.stat(ctx, p, true)
	if err != nil {
		return journal.Change{}, err
	}
	if info == nil {
		return journal.Change{Changed: true, Note: "new directory " + octal(mode)}, nil
	}
	if !info.isDir {
		return journal.Change{}, fmt.Errorf("%s exists and is not a directory", p)
	}
	notes, err := h.attrNotes(ctx, fsys, info, mode, owner, group)
	if err != nil {
		return journal.Change{}, err
	}
	return journal.Change{Changed: len(notes) > 0, Note: strings.Join(notes, ", ")}, nil
}

func hostRemove(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := receiver(b)
	var (
		p         string
		sudo      bool
		recursive bool
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "sudo?", &sudo, "recursive?", &recursive); err != nil {
		return nil, err
	}
	if err := checkPath(p); err != nil {
		return nil, h.errorf(b, "%v", err)
	}
	if strings.Trim(p, "/") == "" {
		return nil, h.errorf(b, "refusing to remove /")
	}
	fsys := h.fs(sudo)
	what := "file"
	out, err := h.do(thread, journal.Op{
		Kind: "remove", Desc: fsys.describe(p), Write: true,
		Check: func(ctx context.Context) (journal.Change, error) {
			var ch journal.Change
			var err error
			ch, what, err = removeChange(ctx, fsys, p, recursive)
			return ch, err
		},
		Apply: func(ctx context.Context) (journal.Change, error) {
			if err := fsys.remove(ctx, p, what); err != nil {
				return journal.Change{}, err
			}
			return journal.Change{Changed: true}, nil
		},
	})
	if err != nil {
		return nil, h.wrap(b, err)
	}
	return starlark.Bool(out.Changed), nil
}

// removeChange says what removing p would change, and how to remove it
// (what: "file", "dir" or "tree").
func removeChange(ctx context.Context, fsys remoteFS, p string, recursive bool) (journal.Change, string, error) {
	pr, err := fsys.lprobe(ctx, p, compareLimit)
	if err != nil {
		return journal.Change{}, "file", err
	}
	switch {
	case pr.info == nil:
		return journal.Change{}, "file", nil
	case pr.info.isDir && recursive:
		return journal.Change{Changed: true, Note: "directory and everything in it"}, "tree", nil
	case pr.info.isDir:
		empty, err := fsys.dirEmpty(ctx, p)
		if err != nil {
			return journal.Change{}, "dir", err
		}
		if !empty {
			return journal.Change{}, "dir", fmt.Errorf("%s is a directory that is not empty (pass recursive=True)", p)
		}
		return journal.Change{Changed: true, Note: "empty directory"}, "dir", nil
	case pr.info.isLink:
		return journal.Change{Changed: true, Note: "symlink"}, "file", nil
	case !pr.info.isRegular:
		return journal.Change{Changed: true, Note: "special file"}, "file", nil
	}
	return journal.Change{Changed: true, Diff: contentDiff(p, &pr, &writeSpec{})}, "file", nil
}

func removeErr(p, what string, err error) error {
	if what == "dir" {
		return fmt.Errorf("%v (a directory that is not empty needs recursive=True)", err)
	}
	return err
}
