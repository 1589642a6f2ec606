package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/mno-sh/mno/engine/runctx"
)

// version is set with -ldflags "-X main.version=…" by `make build`.
var version = ""

// NewApp returns the mno command line. It holds no global state, so tests
// run it in-process.
func NewApp(in io.Reader, out, errOut io.Writer) *cli.App {
	return &cli.App{
		Name:  "mno",
		Usage: "run Starlark playbooks from a k3s control plane",
		Description: "mno adds VPS edge nodes, workers and laptops to a k3s cluster and keeps them in sync,\n" +
			"by pushing over SSH from the control plane. Playbooks and roles are editable Starlark.",
		Reader:          in,
		Writer:          out,
		ErrWriter:       errOut,
		HideHelpCommand: true,
		Suggest:         true,
		ExitErrHandler:  func(*cli.Context, error) {},
		Commands: []*cli.Command{
			runCommand(),
			initCommand(),
			bootstrapCommand(),
			watchCommand(),
			labCommand(),
			testCommand(),
			installCommand(),
			exportCommand(),
			stateCommand(),
			checkCommand(),
			docCommand(),
			versionCommand(),
			historyCommand(),
			showCommand(),
			applyCommand(),
		},
	}
}

// Flags shared by the commands that run playbooks.
func connectionFlags() []cli.Flag {
	return []cli.Flag{
		rootFlag(),
		allowReadFlag(),
		&cli.StringFlag{Name: "identity", Usage: "SSH private key `FILE` (default $MNO_IDENTITY, then $MNO_HOME/id_ed25519)", EnvVars: []string{"MNO_IDENTITY"}},
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` (default: $KUBECONFIG, ~/.kube/config, /etc/rancher/k3s/k3s.yaml, in-cluster)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context `NAME`"},
	}
}

func rootFlag() cli.Flag {
	return &cli.StringFlag{Name: "root", Usage: "workspace `DIR` holding playbooks/ and roles/ (default: the nearest one above the playbook " +
		"or the current directory, used only when it and every directory above it belong to you or root and nobody else can write them)"}
}

func allowReadFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "allow-read", Usage: "let load() and template.file read files under `DIR` outside the workspace (repeatable; listed in the run's header)"}
}

// configFrom builds the control plane configuration from flags and env.
func configFrom(c *cli.Context) runctx.Config {
	home := os.Getenv("MNO_HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = filepath.Join(h, ".mno")
		}
	}
	identity := c.String("identity")
	if identity == "" {
		identity = filepath.Join(home, "id_ed25519")
	}
	return runctx.Config{
		Home:        home,
		Identity:    identity,
		Kubeconfig:  c.String("kubeconfig"),
		KubeContext: c.String("context"),
		Getenv:      os.Getenv,
		Prompt:      terminalPrompt(c.App.Reader, c.App.ErrWriter),
	}
}

// terminalPrompt asks questions on errOut and reads answers from in, when in
// is a terminal; otherwise there is no one to ask (nil).
func terminalPrompt(in io.Reader, errOut io.Writer) func(context.Context, string) (string, error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var mu sync.Mutex
	r := bufio.NewReader(f)
	return func(ctx context.Context, q string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if err := ctx.Err(); err != nil {
			return "", context.Cause(ctx)
		}
		fmt.Fprint(errOut, q)
		type line struct {
			s   string
			err error
		}
		ch := make(chan line, 1)
		go func() {
			s, err := r.ReadString('\n')
			ch <- line{s, err}
		}()
		select {
		case l := <-ch:
			if l.err != nil && l.s == "" {
				return "", fmt.Errorf("no answer: %v", l.err)
			}
			return l.s, nil
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}
}

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("mno %s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of mno",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, versionString())
			return nil
		},
	}
}

// interspersed moves flags given after a command's positional arguments in
// front of them (`mno run sync --dry-run`), since urfave/cli stops parsing
// flags at the first argument. It descends into subcommands (`mno install
// systemd --dir …`); tokens after "--" are left alone.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	return reorder(app.Commands, args, 1)
}

func reorder(cmds []*cli.Command, args []string, at int) []string {
	var cmd *cli.Command
	for _, c := range cmds {
		if c.Name == args[at] || containsStr(c.Aliases, args[at]) {
			cmd = c
		}
	}
	if cmd == nil || cmd.SkipFlagParsing {
		return args
	}
	if len(cmd.Subcommands) > 0 {
		if at+1 < len(args) {
			return reorder(cmd.Subcommands, args, at+1)
		}
		return args
	}
	// Everything after `mno lab exec NODE` is the command's, flags included.
	passThrough := cmd.Name == "exec"
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	rest := args[at+1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" || passThrough && len(positional) > 0 {
			positional = append(positional, rest[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				flags = append(flags, rest[i+1])
				i++
			}
			continue
		}
		positional = append(positional, a)
	}
	out := append(append([]string{}, args[:at+1]...), flags...)
	return append(out, positional...)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
