package lab

import "syscall"

// mountTmpfs puts a tmpfs on dir. A lab keeps its state there rather than on
// /run itself, which is often a small tmpfs; the nodes never see it (their
// /run is their own).
func mountTmpfs(dir string) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=700")
}

// unmount lazily detaches the mount on dir, if any.
func unmount(dir string) error {
	err := syscall.Unmount(dir, syscall.MNT_DETACH)
	if err == syscall.EINVAL || err == syscall.ENOENT {
		return nil
	}
	return err
}
