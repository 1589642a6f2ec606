package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mno-sh/mno/internal/shellquote"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno/lab"
)

func labCommand() *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "real nodes on this machine to try playbooks on: up, env, exec, status, down",
		Description: "A lab is VPS, worker and laptop nodes (real OpenSSH sshd in network and mount namespaces,\n" +
			"copy-on-write filesystems), a real kube-apiserver and the cluster's ConfigMaps, all on this\n" +
			"machine, outliving the command that starts them. Nodes start like fresh machines (root only,\n" +
			"no key authorised); Traefik really runs on a VPS once add-vps starts it, a worker's k3s\n" +
			"agent registers its Node, and a demo service is published for Traefik to serve.\n\n" +
			"  mno lab up                 # start the lab \"default\" (needs root)\n" +
			"  eval \"$(mno lab env)\"      # point mno at it: MNO_HOME, KUBECONFIG, CP_ADDR, VPS_1_ADDR, …\n" +
			"  mno bootstrap --user mno --cp-address \"$CP_ADDR\" | mno lab exec vps-1 sh\n" +
			"  mno lab down",
		Subcommands: []*cli.Command{
			labUpCommand(),
			labEnvCommand(),
			labExecCommand(),
			labStatusCommand(),
			labDownCommand(),
			labAgentCommand(),
			labBackendCommand(),
			labDockerCommand(),
			labBuildTraefikCommand(),
		},
	}
}

// labNameFlag selects a lab: --name, else $MNO_LAB (set by `mno lab env`), else "default".
func labNameFlag() cli.Flag {
	return &cli.StringFlag{Name: "name", Value: "default", EnvVars: []string{"MNO_LAB"}, Usage: "the lab's `NAME` (default $MNO_LAB, else default)"}
}

// openLab opens the lab named by --name, or says how to start it.
func openLab(c *cli.Context) (*lab.Cluster, error) {
	name := c.String("name")
	cl, err := lab.Open(name)
	if errors.Is(err, lab.ErrNoLab) {
		return nil, cli.Exit(fmt.Sprintf("lab %s: there is no lab %q (start it with `mno lab up --name %s`; `mno lab status` lists the labs)", c.Command.Name, name, name), 1)
	}
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("lab %s: %v", c.Command.Name, err), 1)
	}
	return cl, nil
}

func labUpCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "start a lab: nodes, API server, ConfigMaps and a demo service",
		Description: "Starts --vps VPS nodes (vps-1 …), --workers workers and --laptops laptops, a kube-apiserver on\n" +
			"the lab's gateway (CP_ADDR:6443), creates the ConfigMaps with the init playbook and publishes a\n" +
			"demo HTTP service (in worker-1) as \"demo\" in service-registry. The first start builds\n" +
			"kube-apiserver, etcd and Traefik into ~/.cache/mno (15–30 minutes, once). Needs root.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Value: "default", Usage: "the lab's `NAME`; several labs may run at once"},
			&cli.IntFlag{Name: "vps", Value: 1, Usage: "number of VPS nodes"},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "number of workers"},
			&cli.IntFlag{Name: "laptops", Value: 1, Usage: "number of laptops"},
			&cli.StringFlag{Name: "cluster-name", Value: "home", Usage: "cluster-info cluster-name (and domain) the init playbook sets"},
			&cli.StringFlag{Name: "from", Usage: "start from `mynodeone`: nodes, ConfigMaps and a sync controller as MyNodeOne leaves them, for `mno run adopt`"},
			&cli.BoolFlag{Name: "reuse", Usage: "if the lab is already up with these nodes, say so and succeed (make lab)"},
		},
		Action: func(c *cli.Context) error {
			if err := lab.CheckPrivileges(); err != nil {
				return cli.Exit("lab up: "+err.Error(), 1)
			}
			exe, err := os.Executable()
			if err != nil {
				return cli.Exit("lab up: cannot find the mno binary: "+err.Error(), 1)
			}
			name := c.String("name")
			errOut := c.App.ErrWriter
			if c.Bool("reuse") {
				if cl, err := lab.Open(name); err == nil && cl.Running() {
					if have, want := countNodes(cl), [3]int{c.Int("vps"), c.Int("workers"), c.Int("laptops")}; have != want {
						return cli.Exit(fmt.Sprintf("lab up: lab %q is up with %d VPS, %d worker(s), %d laptop(s), not the %d, %d, %d asked for; `mno lab down --name %s` first",
							name, have[0], have[1], have[2], want[0], want[1], want[2], name), 1)
					}
					fmt.Fprintf(errOut, "lab %q is already up (since %s):\n", name, cl.Started.Local().Format("15:04:05"))
					printLab(errOut, cl)
					printBuilds(errOut)
					return nil
				}
			}
			fmt.Fprintf(errOut, "mno lab: starting lab %q: %d VPS, %d worker(s), %d laptop(s)\n", name, c.Int("vps"), c.Int("workers"), c.Int("laptops"))
			start := time.Now()
			cl, err := lab.Up(c.Context, lab.Options{
				Name: name, VPS: c.Int("vps"), Workers: c.Int("workers"), Laptops: c.Int("laptops"),
				ClusterName: c.String("cluster-name"), From: c.String("from"), Exe: exe, Progress: &prefixWriter{w: errOut, p: "mno lab: "},
			})
			if err != nil {
				return cli.Exit("lab up: "+err.Error(), 1)
			}
			fmt.Fprintf(errOut, "lab %q is up (%s):\n", name, time.Since(start).Round(100*time.Millisecond))
			printLab(errOut, cl)
			if cl.TraefikBuilding {
				printBuilds(errOut)
			}
			env := ""
			if name != "default" {
				env = " --name " + name
			}
			fmt.Fprintf(errOut, "\nUse it from this shell:\n  eval \"$(mno lab env%s)\"\n"+
				"then follow the README's walk-through: mno init, mno bootstrap … | mno lab exec NODE sh, mno run add-vps …\n"+
				"A root shell in a node: mno lab exec NODE. Stop everything: mno lab down%s\n", env, env)
			return nil
		},
	}
}

// countNodes counts a lab's VPSes, workers and laptops.
func countNodes(cl *lab.Cluster) [3]int {
	var n [3]int
	for _, node := range cl.Nodes {
		switch node.Kind {
		case lab.KindVPS:
			n[0]++
		case lab.KindWorker:
			n[1]++
		case lab.KindLaptop:
			n[2]++
		}
	}
	return n
}

// printBuilds tells of the helper binaries still building (Traefik, after
// `mno lab up`), which a VPS's docker waits for.
func printBuilds(w io.Writer) {
	builds := lab.Builds()
	if len(builds) == 0 {
		return
	}
	fmt.Fprintf(w, "\nStill building in the background (a VPS runs Traefik once add-vps starts it):\n")
	for _, b := range builds {
		fmt.Fprintf(w, "  %s\n", b)
	}
	fmt.Fprintf(w, "add-vps waits for it (at most %s; it says at once if the build needs longer); `mno lab status` shows how far it is.\n",
		lab.TraefikWaitLimit)
}

// printLab describes a lab's nodes and what runs in them.
func printLab(w io.Writer, cl *lab.Cluster) {
	st := cl.Status()
	state := func(ok bool) string {
		if ok {
			return "running"
		}
		return "STOPPED"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  NODE\tADDRESS\tSTATE\tRUNS\n")
	for _, n := range cl.Nodes {
		runs := append([]string{"sshd"}, st.PerNode[n.Name]...)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Name, n.Addr, state(st.Running[n.Name]), strings.Join(runs, ", "))
	}
	fmt.Fprintf(tw, "  (control plane)\t%s\t%s\tkube-apiserver and etcd: %s\n", cl.Gateway, state(st.API), cl.APIServer)
	tw.Flush()
	fmt.Fprintf(w, "  The demo service (http://%s:%d, in %s) is published as %q in service-registry.\n",
		cl.Demo.Addr, cl.Demo.Port, cl.Demo.Node, cl.Demo.Name)
}

func labEnvCommand() *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "print the shell commands that point mno at a lab: eval \"$(mno lab env)\"",
		Description: "Exports MNO_LAB, MNO_HOME (the lab's own, with its control plane identity), KUBECONFIG,\n" +
			"MNO_K3S_TOKEN_FILE, MNO_K3S_KUBECONFIG and MNO_K3S_TLS_DIR (the lab's stand-ins for the k3s\n" +
			"server's files: add-worker reads the token, add-laptop and sync the client CA), CP_ADDR (the address nodes see the control plane\n" +
			"connect from) and, per node, NODE_ADDR and NODE_HOST_KEY (VPS_1_ADDR, VPS_1_HOST_KEY, …).\n" +
			"--unset prints the commands that remove them again.",
		Flags: []cli.Flag{labNameFlag(), &cli.BoolFlag{Name: "unset", Usage: "print unset commands instead"}},
		Action: func(c *cli.Context) error {
			cl, err := openLab(c)
			if err != nil {
				return err
			}
			out := c.App.Writer
			if c.Bool("unset") {
				for _, v := range cl.Env() {
					fmt.Fprintf(out, "unset %s\n", v.Name)
				}
				return nil
			}
			fmt.Fprintf(out, "# mno lab %q: use with eval \"$(mno lab env)\"\n", cl.Name)
			for _, v := range cl.Env() {
				fmt.Fprintf(out, "export %s=%s\n", v.Name, shellquote.Quote(v.Value))
			}
			return nil
		},
	}
}

func labExecCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command as root inside a lab node (default: sh), stdin passed through",
		ArgsUsage: "NODE [--] [CMD ...]",
		Description: "Runs CMD as root inside NODE's mount and network namespaces, as `docker exec` does, with\n" +
			"this command's stdin, stdout and stderr, and exits with its exit code. Flags of exec come\n" +
			"before NODE; everything after NODE is the command's. Bootstrapping a lab node is piping the\n" +
			"bootstrap line into it, exactly what pasting it does on a real node:\n\n" +
			"  mno bootstrap --user mno --cp-address \"$CP_ADDR\" | mno lab exec vps-1 sh",
		Flags: []cli.Flag{labNameFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return cli.Exit("lab exec: missing NODE (e.g. mno lab exec vps-1 sh)", 1)
			}
			cl, err := openLab(c)
			if err != nil {
				return err
			}
			argv := c.Args().Tail()
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			var env []string
			if t := os.Getenv("TERM"); t != "" {
				env = append(env, "TERM="+t)
			}
			code, err := cl.Exec(c.Context, c.Args().First(), c.App.Reader, c.App.Writer, c.App.ErrWriter, env, argv...)
			if err != nil {
				return cli.Exit("lab exec: "+err.Error(), 1)
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}

func labStatusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "list the labs and what runs in them",
		Flags: []cli.Flag{&cli.StringFlag{Name: "name", Usage: "only the lab `NAME`"}},
		Action: func(c *cli.Context) error {
			out := c.App.Writer
			if name := c.String("name"); name != "" {
				cl, err := openLab(c)
				if err != nil {
					return err
				}
				printStatus(out, cl)
				printBuilds(out)
				return nil
			}
			labs, err := lab.List()
			if err != nil {
				return cli.Exit("lab status: "+err.Error(), 1)
			}
			defer printBuilds(out)
			if len(labs) == 0 {
				fmt.Fprintln(out, "no labs (start one with `mno lab up`)")
				return nil
			}
			for i, cl := range labs {
				if i > 0 {
					fmt.Fprintln(out)
				}
				printStatus(out, cl)
			}
			return nil
		},
	}
}

func printStatus(w io.Writer, cl *lab.Cluster) {
	st := cl.Status()
	fmt.Fprintf(w, "lab %s: %s, started %s (%s ago), in %s\n", cl.Name, st.State(),
		cl.Started.Local().Format("2006-01-02 15:04:05"), time.Since(cl.Started).Round(time.Second), cl.Dir)
	printLab(w, cl)
	if st.State() != "running" {
		fmt.Fprintf(w, "  Part of it is not running (a reboot, or processes killed): `mno lab down --name %s` removes the rest.\n", cl.Name)
	}
}

func labDownCommand() *cli.Command {
	return &cli.Command{
		Name:  "down",
		Usage: "stop a lab and remove everything it made",
		Description: "Stops every process the lab started (in its nodes too), by PID, and removes its network\n" +
			"namespaces, links, routes, mounts and directory, whichever process started it.",
		Flags: []cli.Flag{labNameFlag()},
		Action: func(c *cli.Context) error {
			if err := lab.CheckPrivileges(); err != nil {
				return cli.Exit("lab down: "+err.Error(), 1)
			}
			cl, err := openLab(c)
			if err != nil {
				return err
			}
			if err := cl.Stop(); err != nil {
				return cli.Exit("lab down: "+err.Error(), 1)
			}
			fmt.Fprintf(c.App.ErrWriter, "lab %q is down: its processes, namespaces, links, routes, mounts and files are gone\n", cl.Name)
			return nil
		},
	}
}

func labAgentCommand() *cli.Command {
	return &cli.Command{
		Name:   "agent",
		Usage:  "the k3s agent stand-in run inside lab workers (as /usr/local/bin/k3s agent)",
		Hidden: true,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "config", Value: "/etc/rancher/k3s/config.yaml"}},
		Action: func(c *cli.Context) error {
			if err := lab.RunAgent(c.Context, c.String("config"), c.App.ErrWriter); err != nil {
				return cli.Exit("lab agent: "+err.Error(), 1)
			}
			return nil
		},
	}
}

func labDockerCommand() *cli.Command {
	return &cli.Command{
		Name:            "docker",
		Usage:           "the docker stand-in run inside lab nodes (as docker)",
		Hidden:          true,
		SkipFlagParsing: false,
		Flags:           []cli.Flag{&cli.StringFlag{Name: "traefik", Usage: "the Traefik binary containers run"}},
		Action: func(c *cli.Context) error {
			if code := lab.Docker(c.Args().Slice(), c.String("traefik"), c.App.Writer, c.App.ErrWriter); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}

func labBackendCommand() *cli.Command {
	return &cli.Command{
		Name:   "backend",
		Usage:  "the lab's demo HTTP service",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080"},
			&cli.StringFlag{Name: "node", Value: "?"},
		},
		Action: func(c *cli.Context) error {
			if err := lab.ServeDemo(c.Context, c.String("listen"), c.String("node"), c.App.ErrWriter); err != nil {
				return cli.Exit("lab backend: "+err.Error(), 1)
			}
			return nil
		},
	}
}

func labBuildTraefikCommand() *cli.Command {
	return &cli.Command{
		Name:   "build-traefik",
		Usage:  "build Traefik into the cache, after any other build of it (what `mno lab up` runs in the background)",
		Hidden: true,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "cache", Required: true}},
		Action: func(c *cli.Context) error {
			if err := lab.BuildTraefik(c.Context, c.String("cache"), c.App.ErrWriter); err != nil {
				return cli.Exit("lab build-traefik: "+err.Error(), 1)
			}
			return nil
		},
	}
}

// prefixWriter starts every line written to it with p.
type prefixWriter struct {
	w       io.Writer
	p       string
	midLine bool
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !pw.midLine {
			out = append(out, pw.p...)
		}
		out = append(out, c)
		pw.midLine = c != '\n'
	}
	if _, err := pw.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
