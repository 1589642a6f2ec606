package ssh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"github.com/mno-sh/mno/internal/shellquote"
)

// A host's files are reached through one of two back-ends, chosen once per
// builtin call by its sudo= argument (host.fs):
//
//   - sftpFS (sftpfs.go): SFTP as the login user; the few things SFTP cannot
//     do (SHA-256 of a large file, removing a tree) are one exec each.
//   - shellFS (shellfs.go): one POSIX sh script per operation, run as root
//     with `sudo -n` (SFTP cannot change user); put and edit probe and write
//     on one root shell, and a refused edit of /etc/hosts goes through the
//     laptop rule's helper (hostshelper.go).
//
// files.go and paths.go (put, edit, get, stat, exists, mkdir, remove) and
// run.go's creates= speak only remoteFS.

// remoteFS is a host's filesystem as one builtin call sees it.
type remoteFS interface {
	// describe is p as the journal names it.
	describe(p string) string
	// stat stats p (following a symlink when follow), owner and group
	// names included; nil when missing.
	stat(ctx context.Context, p string, follow bool) (*fileInfo, error)
	// isDir reports whether p is a directory (following symlinks), without
	// resolving names.
	isDir(ctx context.Context, p string) (bool, error)
	// read reads p whole; missing reports a missing file, and anything but
	// a file is an error.
	read(ctx context.Context, p string) (data []byte, missing bool, err error)
	// lprobe stats p itself (not a symlink's target) and reads it when it
	// is a regular file of at most limit bytes.
	lprobe(ctx context.Context, p string, limit int64) (probe, error)
	// openEdit probes p for put and edit (following a symlink): stat, and
	// content up to limit bytes or the SHA-256 of a file of sumSize bytes.
	// The fileEdit writes it; it must be closed unless it wrote.
	openEdit(ctx context.Context, p string, limit, sumSize int64) (fileEdit, probe, error)
	// names fills in info's owner and group names for a message; an error
	// is one only where the names matter to the back-end.
	names(ctx context.Context, info *fileInfo) error
	// mkdir makes p and its parents and sets p's mode, owner and group
	// ("": leave).
	mkdir(ctx context.Context, p string, mode uint32, owner, group string) error
	// remove removes p as what says: "file" (a file, symlink or special
	// file), "dir" (an empty directory) or "tree" (a directory and
	// everything in it).
	remove(ctx context.Context, p, what string) error
	// dirEmpty reports whether directory p has no entries.
	dirEmpty(ctx context.Context, p string) (bool, error)
}

// fileEdit is a probed file waiting to be written (put, edit).
type fileEdit interface {
	// write replaces the probed file p atomically with w; pr is its probe.
	write(ctx context.Context, p string, pr *probe, w *writeSpec) error
	// close ends it without writing (nil-safe on the shell side).
	close()
	// note is what the journal adds to the effect's note ("" for nothing).
	note() string
}

// fs is the back-end of one call: the root shell with sudo, else SFTP.
func (h *host) fs(sudo bool) remoteFS {
	if sudo {
		return shellFS{h}
	}
	return sftpFS{h}
}

// compareLimit is the largest file read whole to compare with new content
// (and diff); larger files of equal size are compared by SHA-256 on the host.
const compareLimit = 1 << 20

// noLimit reads a file whole, whatever its size.
const noLimit = int64(1) << 62

// fileInfo is what a stat of a remote path reports.
type fileInfo struct {
	isDir, isLink, isRegular bool
	size                     int64
	mode                     uint32 // permission bits with setuid, setgid and sticky
	uid, gid                 int
	owner, group             string // "" until resolved
	mtime                    int64
}

// probe is a file's state as one round trip reads it: stat, and content
// (when regular and at most the limit) or its SHA-256 (when larger and of the
// size asked for).
type probe struct {
	info    *fileInfo // nil: missing
	content []byte
	full    bool   // content is the whole file
	sum     string // hex SHA-256, for large files
	// link says the path itself is a symlink (info is its target's).
	link bool
	// dirKnown says the probe saw whether the parent directory of a missing
	// path exists (dirExists), so compare needs no second round trip.
	dirKnown, dirExists bool
	// dirMissing is set by put's check when the parent directory is missing.
	dirMissing bool
}

// writeSpec is a file as it should be.
type writeSpec struct {
	content []byte
	secret  bool
	mode    uint32
	// owner and group are names (or numeric ids); "" keeps an existing
	// file's and leaves a new file's to the writing user.
	owner, group string
}

func quote(s string) string { return shellquote.Quote(s) }

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func octal(m uint32) string { return "0" + strconv.FormatUint(uint64(m), 8) }
