package ssh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// TestRemoteFSBackends runs every remoteFS operation through both back-ends
// — SFTP as the login user and the root shell under sudo — on one real sshd
// host, in directories whose names carry shell syntax, quotes, a newline
// and unicode, and checks that the two report the same thing: what mkdir,
// write, stat, lprobe, read, openEdit's probe (content, SHA-256 of a large
// file, a symlink), dirEmpty and remove did, read back through the other
// back-end too, and that none of the names ran as a command.
func TestRemoteFSBackends(t *testing.T) {
	signer, line := hoststest.NewKey(t)
	lab := hoststest.Start(t, 1, hosts.AuthorizedKeys(line))
	lh := lab.Hosts()[0]
	ctx := context.Background()
	c, _, err := dial(ctx, ctx, dialSpec{
		user: "mno", hostport: lh.Endpoint(), timeout: 10 * time.Second,
		policy: &hostKeyPolicy{pinKey: lh.PublicKey()}, id: &identity{signers: []xssh.Signer{signer}},
		keepalive: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	h := &host{name: lh.Name, address: lh.Addr, user: "mno", port: lh.Port, c: c}
	sftpSide, shellSide := h.fs(false), h.fs(true)
	if _, ok := sftpSide.(sftpFS); !ok {
		t.Fatalf("fs(false) is %T, want sftpFS", sftpSide)
	}
	if _, ok := shellSide.(shellFS); !ok {
		t.Fatalf("fs(true) is %T, want shellFS", shellSide)
	}

	hostile := "it's $(touch /tmp/pwned) `id` \"q\" ;& ünï\nline"
	results := map[string][]string{}
	for _, side := range []struct {
		name  string
		fs    remoteFS
		other remoteFS
	}{{"sftp", sftpSide, shellSide}, {"shell", shellSide, sftpSide}} {
		base := "/home/mno/" + side.name + " " + hostile
		results[side.name] = exercise(t, ctx, side.fs, side.other, base, func(p string) {
			if out, err := lh.Command(ctx, false, "ln", "-s", "f", p).CombinedOutput(); err != nil {
				t.Fatalf("ln -s: %v\n%s", err, out)
			}
		})
	}
	if _, err := lh.Stat("/tmp/pwned"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a path ran as a command: /tmp/pwned exists (%v)", err)
	}
	if !reflect.DeepEqual(results["sftp"], results["shell"]) {
		for i := range max(len(results["sftp"]), len(results["shell"])) {
			a, b := at(results["sftp"], i), at(results["shell"], i)
			if a != b {
				t.Errorf("step %d: sftp %q, shell %q", i, a, b)
			}
		}
	}
	if got, want := sftpSide.describe("/p"), "/p"; got != want {
		t.Errorf("sftp describe: %q, want %q", got, want)
	}
	if got, want := shellSide.describe("/p"), "/p (sudo)"; got != want {
		t.Errorf("shell describe: %q, want %q", got, want)
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}

// exercise runs the operations on fsys under base (other reads back) and
// returns what each reported (names filled in where a probe has only ids),
// with base left out; wants are checked here,
// sameness across back-ends by the caller. link makes a symlink to "f".
func exercise(t *testing.T, ctx context.Context, fsys, other remoteFS, base string, link func(p string)) []string {
	t.Helper()
	var log []string
	rec := func(format string, args ...any) {
		log = append(log, strings.ReplaceAll(fmt.Sprintf(format, args...), base, "BASE"))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
	}
	statLine := func(info *fileInfo) string {
		if info == nil {
			return "missing"
		}
		return fmt.Sprintf("dir=%v link=%v reg=%v size=%d mode=%s %s:%s", info.isDir, info.isLink, info.isRegular,
			info.size, octal(info.mode), info.owner, info.group)
	}
	// Probes carry ids; names come from names (as compare asks for them).
	named := func(info *fileInfo) *fileInfo {
		t.Helper()
		if info != nil {
			must(fsys.names(ctx, info))
		}
		return info
	}
	dir := base + "/d"
	file := dir + "/f"

	must(fsys.mkdir(ctx, dir, 0o750, "mno", "mno"))
	info, err := fsys.stat(ctx, dir, true)
	must(err)
	rec("mkdir: %s", statLine(info))
	if info == nil || !info.isDir || info.mode != 0o750 || info.owner != "mno" || info.group != "mno" {
		t.Errorf("%s: after mkdir: %s", dir, statLine(info))
	}
	empty, err := fsys.dirEmpty(ctx, dir)
	must(err)
	rec("empty: %v", empty)

	ed, pr, err := fsys.openEdit(ctx, file, compareLimit, -1)
	must(err)
	rec("probe missing: %s", statLine(pr.info))
	content := []byte("hello ünï\n")
	must(ed.write(ctx, file, &pr, &writeSpec{content: content, mode: 0o640, owner: "mno", group: "mno"}))
	for _, r := range []remoteFS{fsys, other} {
		data, missing, err := r.read(ctx, file)
		must(err)
		rec("read back: %q missing=%v", data, missing)
		if string(data) != string(content) {
			t.Errorf("%s: read back %q, want %q", file, data, content)
		}
	}
	info, err = fsys.stat(ctx, file, true)
	must(err)
	rec("written: %s", statLine(info))
	if info == nil || info.mode != 0o640 || info.owner != "mno" || info.group != "mno" {
		t.Errorf("%s: after write: %s", file, statLine(info))
	}

	// A second probe sees the content, or with a small limit its SHA-256.
	ed, pr, err = fsys.openEdit(ctx, file, compareLimit, -1)
	must(err)
	ed.close()
	rec("probe: %s full=%v %q", statLine(named(pr.info)), pr.full, pr.content)
	ed, pr, err = fsys.openEdit(ctx, file, 4, int64(len(content)))
	must(err)
	ed.close()
	sum := sha256.Sum256(content)
	rec("probe large: full=%v sum=%s", pr.full, pr.sum)
	if pr.full || pr.sum != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: probe with limit 4: full=%v sum %q, want %x", file, pr.full, pr.sum, sum)
	}

	// A symlink: lprobe and stat(follow=false) see it, stat and a probe its target.
	ln := dir + "/ln"
	link(ln)
	lp, err := fsys.lprobe(ctx, ln, compareLimit)
	must(err)
	rec("lprobe link: link=%v", lp.info != nil && lp.info.isLink)
	info, err = fsys.stat(ctx, ln, true)
	must(err)
	rec("stat link: %s", statLine(info))
	ed, pr, err = fsys.openEdit(ctx, ln, compareLimit, -1)
	must(err)
	ed.close()
	rec("probe link: %s %q", statLine(named(pr.info)), pr.content)
	lp, err = fsys.lprobe(ctx, file, compareLimit)
	must(err)
	rec("lprobe file: %s full=%v %q", statLine(named(lp.info)), lp.full, lp.content)

	isDir, err := fsys.isDir(ctx, dir)
	must(err)
	rec("isDir dir: %v", isDir)
	isDir, err = fsys.isDir(ctx, file)
	must(err)
	rec("isDir file: %v", isDir)
	_, _, err = fsys.read(ctx, dir)
	rec("read dir fails: %v", err != nil)
	_, missing, err := fsys.read(ctx, dir+"/nope")
	must(err)
	rec("read missing: %v", missing)
	empty, err = fsys.dirEmpty(ctx, dir)
	must(err)
	rec("empty: %v", empty)

	// remove: a file, a directory that is not empty (refused), a tree.
	must(fsys.remove(ctx, ln, "file"))
	err = fsys.remove(ctx, dir, "dir")
	rec("remove non-empty dir: %v", err != nil && strings.Contains(err.Error(), "needs recursive=True"))
	must(fsys.remove(ctx, base, "tree"))
	info, err = fsys.stat(ctx, base, false)
	must(err)
	rec("after remove tree: %s", statLine(info))
	if info != nil {
		t.Errorf("%s still there after removing the tree", base)
	}
	return log
}
