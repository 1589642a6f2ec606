// Command mno runs Starlark playbooks from a k3s control plane.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno/engine"
)

func main() {
	os.Exit(Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// Main runs the CLI and returns the exit code. SIGINT and SIGTERM cancel the
// run (threads, remote and local commands); a second SIGINT exits at once.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for range sigs {
			n++
			if n > 1 {
				fmt.Fprintln(errOut, "interrupted again: exiting now")
				os.Exit(engine.ExitInterrupted)
			}
			fmt.Fprintln(errOut, "interrupted: cancelling the run (interrupt again to exit at once)")
			cancel(engine.ErrInterrupted)
		}
	}()

	app := NewApp(in, out, errOut)
	err := app.RunContext(ctx, interspersed(app, args))
	return exitCode(err, errOut)
}

// exitError carries an exit code whose message was already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func exitCode(err error, errOut io.Writer) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(errOut, "mno:", msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(errOut, "mno:", err)
	return 1
}
