package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mno-sh/mno/lab/hosts"
)

// TempRoot holds the directories of anonymous labs (mno test).
const TempRoot = "/run/mno-lab/test"

// TempDir makes a directory under TempRoot for an anonymous lab, held by this
// process until release. It first removes what anonymous labs of processes
// that died left: their processes die with them, their files did not.
func TempDir() (dir string, release func(), err error) {
	if err := os.MkdirAll(TempRoot, 0o700); err != nil {
		return "", nil, err
	}
	cleanTemp()
	var f *os.File
	for {
		if dir, err = os.MkdirTemp(TempRoot, "lab-"); err != nil {
			return "", nil, err
		}
		f, err = os.OpenFile(dir+".owner", os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		if _, err := os.Stat(dir); err == nil {
			break
		}
		// Another process's cleanTemp took it for stale before we held it.
		f.Close()
	}
	return dir, func() {
		os.RemoveAll(dir)
		os.Remove(f.Name())
		f.Close()
	}, nil
}

// cleanTemp removes the directories of anonymous labs whose owner is gone.
func cleanTemp() {
	ents, _ := os.ReadDir(TempRoot)
	stale := false
	for _, e := range ents {
		owner, ok := strings.CutSuffix(e.Name(), ".owner")
		if !ok {
			continue
		}
		f, err := os.OpenFile(filepath.Join(TempRoot, e.Name()), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if !stale {
				// The hosts' mounts and namespaces first, so the files can go.
				_ = hosts.CleanStale(context.Background(), "")
				stale = true
			}
			dir := filepath.Join(TempRoot, owner)
			if c, err := openDir(dir); err == nil {
				_ = c.stop()
			}
			_ = unmount(dir)
			os.RemoveAll(dir)
			os.Remove(f.Name())
		}
		f.Close()
	}
}
