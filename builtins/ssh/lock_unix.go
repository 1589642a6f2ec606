//go:build unix

package ssh

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on f; it is per open file, so it
// serialises threads of this process as well as other processes.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}

func unlockFile(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
