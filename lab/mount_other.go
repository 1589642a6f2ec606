//go:build !linux

package lab

import "errors"

func mountTmpfs(string) error { return errors.New("lab: tmpfs needs Linux") }
func unmount(string) error    { return nil }
