// Package proc starts the lab's long-running children (etcd, kube-apiserver,
// Traefik) so that they die with the process that started them, and only then
// — or, for `mno lab`, so that they outlive it (StartDetached), to be stopped
// later by Ref, from any process.
//
// Linux's parent-death signal fires when the OS *thread* that forked the
// child exits, not the process. Go terminates a thread whose goroutine exits
// while locked to it — which namespace code (lab/hosts) does on purpose. So a
// child is forked from a goroutine that keeps its thread locked until the
// child has been reaped: that thread cannot end before the child does.
package proc

import (
	"os/exec"
	"runtime"
)

// Start starts cmd with a parent-death signal (on Linux) and reaps it. The
// returned channel yields cmd.Wait's result once, when the child has exited.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	setDeathSignal(cmd)
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread() // the thread outlived the child: it may be reused
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
