//go:build !linux

package hosts

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
)

// Hosts need Linux namespaces; elsewhere the package builds but Start fails.

var errUnsupported = errors.New("hosts: lab hosts need Linux")

type nsSpec struct {
	name     string
	netns    string
	addr     [4]byte
	overlays []mountSpec
	binds    []string
	sshd     string
	log      *os.File
	detached bool
}

type mountSpec struct{ target, lower, upper, work string }

func startHost(nsSpec) (*exec.Cmd, chan<- struct{}, error) { return nil, nil, errUnsupported }

func mkWhiteout(string) error                                 { return errUnsupported }
func mountTmpfs(string) error                                 { return errUnsupported }
func unmount(string) error                                    { return errUnsupported }
func setOpaque(string) error                                  { return errUnsupported }
func tryLock(*os.File) (bool, error)                          { return false, errUnsupported }
func flockWait(*os.File) error                                { return errUnsupported }
func (h *Host) readFileIn(string) ([]byte, error)             { return nil, errUnsupported }
func (h *Host) statIn(string) (fs.FileInfo, error)            { return nil, errUnsupported }
func (h *Host) writeFileIn(string, []byte, fs.FileMode) error { return errUnsupported }
func (h *Host) mkdirAllIn(string, fs.FileMode) error          { return errUnsupported }
func (h *Host) symlinkIn(string, string) error                { return errUnsupported }
