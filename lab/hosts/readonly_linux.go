package hosts

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A host's / is this machine's root filesystem: only its overlays and fresh
// tmpfs are its own. protectMachine makes every other mount the host can
// reach read-only, so that root inside a host writing /x or /usr/bin/foo gets
// EROFS instead of changing the machine. Mount flags belong to each mount, and
// the host's mount namespace holds its own copies of the machine's mounts, so
// the machine keeps writing its files; only the host cannot.
//
// It runs last, once the overlays are mounted: overlayfs refuses an upper
// layer on a read-only mount, and the layers live on this machine's mounts
// (the lab's tmpfs, or a disk). A mounted overlay keeps a private clone of its
// upper layer's mount, which the change does not reach.
//
// This guards against mistakes, not against a hostile host: root inside holds
// CAP_SYS_ADMIN and could remount.

// protectMachine sets the read-only flag on every mount of the thread's
// namespace that is not at or below one of writable. Mounts that another
// covers (this machine's /tmp under the host's tmpfs) are left alone: no path
// reaches them, and their mount point names the mount on top.
func protectMachine(writable []string) error {
	info, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(info)) {
		// id parent major:minor root mount-point options …
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		id, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("mountinfo line %q", line)
		}
		mp := unescapeMountinfo(f[4])
		if withinAny(mp, writable) {
			continue
		}
		if err := setReadOnly(mp, id); err != nil {
			return fmt.Errorf("%s: %w", mp, err)
		}
	}
	return nil
}

// setReadOnly makes mount id read-only if it is the mount that path mp
// reaches, leaving its other flags (nosuid, noexec, …) as they are.
func setReadOnly(mp string, id uint64) error {
	fd, err := unix.Open(mp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil // below a covered mount
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &st); err != nil {
		return err
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return fmt.Errorf("statx gives no mount ID (hosts need Linux 5.12 or later)")
	}
	if st.Mnt_id != id {
		return nil // covered by another mount
	}
	return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
}

// withinAny reports whether p is one of dirs or below one.
func withinAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if within(p, d) {
			return true
		}
	}
	return false
}
