package hosts

import (
	"os"

	"golang.org/x/sys/unix"
)

// mkWhiteout makes p an overlayfs whiteout: the lower file is hidden.
func mkWhiteout(p string) error {
	return unix.Mknod(p, unix.S_IFCHR, 0)
}

// setOpaque hides the lower directory's entries under upper directory p.
func setOpaque(p string) error {
	return unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
}

// tryLock takes an exclusive flock on f without waiting; false means another
// open file (in this process or a live other one) holds it.
func tryLock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}

// flockWait takes an exclusive flock on f, waiting for it.
func flockWait(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX)
}

// mountTmpfs puts a tmpfs on dir: a lab's layers are thousands of small files
// and directories, which memory makes and removes far faster than a disk.
func mountTmpfs(dir string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=700")
}

// unmount detaches whatever is mounted on dir, if anything.
func unmount(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err == unix.EINVAL || err == unix.ENOENT {
		return nil
	}
	return err
}
