package ssh

import (
	"context"
	"fmt"
	"os"
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
	var info *fileInfo
	_, err := h.do(thread, journal.Op{
		Kind: "stat", Desc: describePath(p, sudo),
		Apply: func(ctx context.Context) (journal.Change, error) {
			var err error
			info, err = h.statPath(ctx, p, sudo, true)
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
	out, err := h.do(thread, journal.Op{
		Kind: "mkdir", Desc: describePath(p, sudo), Write: true,
		Check: func(ctx context.Context) (journal.Change, error) {
			info, err := h.statPath(ctx, p, sudo, true)
			if err != nil {
				return journal.Change{}, err
			}
			if info == nil {
				return journal.Change{Changed: true, Note: "new directory " + octal(mode.M)}, nil
			}
			if !info.isDir {
				return journal.Change{}, fmt.Errorf("%s exists and is not a directory", p)
			}
			var notes []string
			if info.mode != mode.M {
				notes = append(notes, fmt.Sprintf("mode %s → %s", octal(info.mode), octal(mode.M)))
			}
			for _, g := range []bool{false, true} {
				want, was, what := owner.s, info.owner, "owner"
				if g {
					want, was, what = group.s, info.group, "group"
				}
				ok, err := h.idMatches(ctx, info, g, want)
				if err != nil {
					return journal.Change{}, err
				}
				if !ok {
					notes = append(notes, fmt.Sprintf("%s %s → %s", what, was, want))
				}
			}
			return journal.Change{Changed: len(notes) > 0, Note: strings.Join(notes, ", ")}, nil
		},
		Apply: func(ctx context.Context) (journal.Change, error) {
			if sudo {
				out, err := h.script(ctx, true, mkdirScript, nil, p, octal(mode.M), owner.s, group.s)
				if err != nil {
					return journal.Change{}, err
				}
				if out.code != 0 {
					return journal.Change{}, scriptErr("mkdir "+p, out)
				}
				return journal.Change{Changed: true}, nil
			}
			cl, err := h.c.sftpClient()
			if err != nil {
				return journal.Change{}, err
			}
			if err := cl.MkdirAll(p); err != nil {
				return journal.Change{}, h.fsErr("mkdir", p, err)
			}
			if owner.s != "" || group.s != "" {
				uid, gid, err := h.wantIDs(ctx, nil, owner.s, group.s)
				if err != nil {
					return journal.Change{}, err
				}
				if err := cl.Chown(p, uid, gid); err != nil {
					return journal.Change{}, h.ownerErr(p, &writeSpec{owner: owner.s, group: group.s}, err)
				}
			}
			if err := cl.Chmod(p, os.FileMode(mode.M&0o777)|setBits(mode.M)); err != nil {
				return journal.Change{}, h.fsErr("chmod", p, err)
			}
			return journal.Change{Changed: true}, nil
		},
	})
	if err != nil {
		return nil, h.wrap(b, err)
	}
	return starlark.Bool(out.Changed), nil
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
	what := "file"
	out, err := h.do(thread, journal.Op{
		Kind: "remove", Desc: describePath(p, sudo), Write: true,
		Check: func(ctx context.Context) (journal.Change, error) {
			var pr probe
			var err error
			if sudo {
				pr, err = h.shellProbe(ctx, p, compareLimit, -1, false)
			} else {
				pr.info, err = h.sftpStat(p, true)
				if err == nil && pr.info != nil && pr.info.isRegular && pr.info.size <= compareLimit {
					pr.content, _, err = h.sftpRead(p)
					pr.full = err == nil
				}
			}
			if err != nil {
				return journal.Change{}, err
			}
			switch {
			case pr.info == nil:
				return journal.Change{}, nil
			case pr.info.isDir:
				what = "dir"
				if recursive {
					what = "tree"
					return journal.Change{Changed: true, Note: "directory and everything in it"}, nil
				}
				empty, err := h.dirEmpty(ctx, p, sudo)
				if err != nil {
					return journal.Change{}, err
				}
				if !empty {
					return journal.Change{}, fmt.Errorf("%s is a directory that is not empty (pass recursive=True)", p)
				}
				return journal.Change{Changed: true, Note: "empty directory"}, nil
			case pr.info.isLink:
				return journal.Change{Changed: true, Note: "symlink"}, nil
			case !pr.info.isRegular:
				return journal.Change{Changed: true, Note: "special file"}, nil
			}
			return journal.Change{Changed: true, Diff: contentDiff(p, &pr, &writeSpec{})}, nil
		},
		Apply: func(ctx context.Context) (journal.Change, error) {
			if sudo || what == "tree" {
				out, err := h.script(ctx, sudo, removeScript, nil, p, what)
				if err != nil {
					return journal.Change{}, err
				}
				if out.code != 0 {
					return journal.Change{}, removeErr(p, what, scriptErr("remove "+p, out))
				}
				return journal.Change{Changed: true}, nil
			}
			cl, err := h.c.sftpClient()
			if err != nil {
				return journal.Change{}, err
			}
			if what == "dir" {
				err = cl.RemoveDirectory(p)
			} else {
				err = cl.Remove(p)
			}
			if err != nil {
				return journal.Change{}, removeErr(p, what, h.fsErr("remove", p, err))
			}
			return journal.Change{Changed: true}, nil
		},
	})
	if err != nil {
		return nil, h.wrap(b, err)
	}
	return starlark.Bool(out.Changed), nil
}

// dirEmpty reports whether directory p has no entries.
func (h *host) dirEmpty(ctx context.Context, p string, sudo bool) (bool, error) {
	if sudo {
		out, err := h.script(ctx, true, `[ -z "$(ls -A -- "$1")" ]`, nil, p)
		if err != nil {
			return false, err
		}
		return out.code == 0, nil
	}
	cl, err := h.c.sftpClient()
	if err != nil {
		return false, err
	}
	ents, err := cl.ReadDir(p)
	if err != nil {
		return false, h.fsErr("list", p, err)
	}
	return len(ents) == 0, nil
}

func removeErr(p, what string, err error) error {
	if what == "dir" {
		return fmt.Errorf("%v (a directory that is not empty needs recursive=True)", err)
	}
	return err
}
