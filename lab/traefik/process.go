package traefik

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// Argv is the command line that runs binary with the static configuration configFile. Traefik
// takes its static configuration from exactly one source, so nothing else is added.
func Argv(binary, configFile string) []string {
	return []string{binary, "--configFile=" + configFile}
}

// Options configure [Start].
type Options struct {
	// ConfigFile is the static configuration (YAML or TOML). Required.
	ConfigFile string
	// Binary to run; empty means [Binary].
	Binary string
	// Command turns the argv into a command; nil runs it directly on this host. A caller
	// that needs Traefik inside namespaces returns a Cmd set up for that (a wrapper program or
	// SysProcAttr clone flags). Start sets a parent-death signal unless one is set and, if
	// Stdout and Stderr are nil, captures the output for [Process.Output].
	Command func(argv []string) *exec.Cmd
	// ReadyURL, if set, is polled until it answers 200 before Start returns, for example
	// the ping endpoint (`ping: {}` in the static configuration). Leave it empty when this
	// process cannot reach Traefik's network and call [Process.WaitReady] with a client
	// that can.
	ReadyURL string
}

// Process is a running Traefik.
type Process struct {
	// Cmd is the started command.
	Cmd *exec.Cmd

	out  *tailBuffer
	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's result, valid after done
}

// Start runs Traefik and, if opts.ReadyURL is set, waits until it answers. ctx bounds the
// start only; the process runs until [Process.Stop] or, on Linux, until this process dies.
// Start does not move to another goroutine: a namespace entered by the calling thread applies.
func Start(ctx context.Context, opts Options) (*Process, error) {
	if opts.ConfigFile == "" {
		return nil, errors.New("traefik: Options.ConfigFile is required")
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, fmt.Errorf("traefik: %w", err)
		}
	}
	argv := Argv(bin, opts.ConfigFile)
	var cmd *exec.Cmd
	if opts.Command != nil {
		cmd = opts.Command(argv)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
		setProcessGroup(cmd)
	}
	p := &Process{Cmd: cmd, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	if cmd.Stdout == nil && cmd.Stderr == nil {
		cmd.Stdout, cmd.Stderr = p.out, p.out
	}
	waited, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("traefik: %w", err)
	}
	go func() {
		p.err = <-waited
		close(p.done)
	}()
	if opts.ReadyURL != "" {
		if err := p.WaitReady(ctx, nil, opts.ReadyURL); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// WaitReady polls url with client (nil: a plain client) until it answers 200, failing early
// with Traefik's output if the process exits.
func (p *Process) WaitReady(ctx context.Context, client *http.Client, url string) error {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return proc.WaitHTTP(ctx, client, url, "traefik at "+url, p.done, func() error {
		return fmt.Errorf("traefik exited (%v):\n%s", p.err, p.Output())
	})
}

// Output returns the end of Traefik's output, when Start captured it.
func (p *Process) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM, then SIGKILL after five seconds, and waits for the process to exit. It
// is safe to call more than once.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.Cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
