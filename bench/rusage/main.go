// Command rusage runs a command and records its wall time, CPU and peak RSS
// (wait4's rusage) as JSON in a file, for bench/syncbench:
//
//	rusage OUT CMD ARGS...
//
// It exits with the command's status. It is a separate, small program
// because Linux counts the memory image a child had before exec in its
// ru_maxrss, and Go spawns children sharing the parent's memory until exec:
// a command started by the benchmark itself (tens of MiB of Kubernetes
// client and lab code) would report at least the benchmark's RSS.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Usage is what OUT holds.
type Usage struct {
	WallNS, UserNS, SysNS int64
	MaxRSSKB              int64
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: rusage OUT CMD ARGS...")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	u := Usage{WallNS: int64(time.Since(start))}
	code := 0
	if err != nil {
		code = 1
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		} else {
			fmt.Fprintln(os.Stderr, "rusage:", err)
		}
	}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			u.MaxRSSKB, u.UserNS, u.SysNS = ru.Maxrss, ru.Utime.Nano(), ru.Stime.Nano()
		}
	}
	b, _ := json.Marshal(u)
	if err := os.WriteFile(os.Args[1], b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		os.Exit(2)
	}
	os.Exit(code)
}
