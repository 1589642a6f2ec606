//go:build !unix

package ssh

import "os"

// Without flock(2) known_hosts appends are not serialised.
func lockFile(*os.File) error { return nil }
func unlockFile(*os.File)     {}
