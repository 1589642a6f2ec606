package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/controller"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/history"
	"github.com/mno-sh/mno/internal/kubeconfig"
)

// defaultWatches are the four ConfigMaps the cluster's state lives in.
var defaultWatches = []string{
	"kube-system/service-registry",
	"kube-system/sync-controller-registry",
	"kube-system/domain-registry",
	"kube-system/cluster-info",
}

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "run a playbook whenever the cluster's ConfigMaps change (a controller)",
		ArgsUsage: "PLAYBOOK [key=value ...]",
		Description: "Runs PLAYBOOK once at start, then whenever a watched ConfigMap changes (debounced, so a\n" +
			"burst of changes gives one run) and every --resync period. Never two runs at once; a failed\n" +
			"run is retried with capped exponential backoff. A Lease in kube-system elects one leader,\n" +
			"so several control planes running `mno watch` never run the playbook at the same time.\n" +
			"SIGTERM lets the current run finish within --grace, then cancels it.",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "on", Usage: "watch ConfigMap `NAMESPACE/NAME` (repeatable; default: the four mno ConfigMaps)"},
			&cli.BoolFlag{Name: "on-services", Usage: "also run when a Service is created, deleted or changes its type, ports, load-balancer address or annotations, in any namespace (for `mno watch discover`)"},
			&cli.DurationFlag{Name: "resync", Value: time.Hour, Usage: "also run every `DURATION` (0: never)"},
			&cli.DurationFlag{Name: "debounce", Value: 2 * time.Second, Usage: "wait `DURATION` after a change for more changes before running"},
			&cli.DurationFlag{Name: "grace", Value: 30 * time.Second, Usage: "on SIGTERM, let the current run finish for `DURATION`"},
			&cli.DurationFlag{Name: "backoff-max", Value: 5 * time.Minute, Usage: "longest wait before retrying a failed run"},
			&cli.StringFlag{Name: "listen", Usage: "serve /healthz and /metrics on `ADDR` (e.g. 127.0.0.1:9090)"},
			&cli.StringFlag{Name: "lease", Usage: "leader election Lease `NAME` in kube-system (default mno-watch-PLAYBOOK)"},
			&cli.DurationFlag{Name: "lease-duration", Value: 15 * time.Second, Usage: "how long a dead leader keeps the lease"},
			&cli.BoolFlag{Name: "no-leader-election", Usage: "run without a Lease (one controller only)"},
			&cli.Uint64Flag{Name: "max-steps", Value: engine.DefaultMaxSteps, Usage: "Starlark step budget per thread"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Minute, Usage: "cancel a run after `DURATION`"},
		}, connectionFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return cli.Exit("watch: missing PLAYBOOK (e.g. `mno watch sync`)", 1)
			}
			playbook := c.Args().First()
			params := c.Args().Tail()
			cfg := configFrom(c)
			on := c.StringSlice("on")
			if len(on) == 0 {
				on = defaultWatches
			}
			var targets []controller.Target
			for _, o := range on {
				ns, name, ok := strings.Cut(o, "/")
				if !ok || ns == "" || name == "" {
					return cli.Exit(fmt.Sprintf("watch: --on %q: want NAMESPACE/NAME", o), 1)
				}
				targets = append(targets, controller.Target{Namespace: ns, Name: name})
			}
			// The playbook is resolved again for every run (an edit takes
			// effect), but a typo or an unsafe workspace fails here, at once.
			if _, _, err := engine.Resolve(engine.Options{Playbook: playbook, Root: c.String("root"),
				AllowRead: c.StringSlice("allow-read"), Embedded: mno.Files}); err != nil {
				return cli.Exit("watch: "+err.Error(), 1)
			}
			// mno's own certificate ($MNO_HOME/kubeconfig) is renewed now and checked every
			// hour; the client reloads the renewed files by itself.
			renewIdentity(cfg, time.Now(), c.App.ErrWriter)
			go func() {
				t := time.NewTicker(time.Hour)
				defer t.Stop()
				for {
					select {
					case <-c.Context.Done():
						return
					case now := <-t.C:
						renewIdentity(cfg, now, c.App.ErrWriter)
					}
				}
			}()
			rc, where, err := kubeconfig.RESTConfig(kubeconfig.Options{Kubeconfig: cfg.Kubeconfig, Context: cfg.KubeContext, Getenv: cfg.Getenv})
			if err != nil {
				return cli.Exit("watch: "+err.Error(), 1)
			}
			cs, err := kclient.New(rc)
			if err != nil {
				return cli.Exit(fmt.Sprintf("watch: client for %s: %v", where, err), 1)
			}
			metrics := controller.NewMetrics()
			if addr := c.String("listen"); addr != "" {
				ln, err := controller.Serve(addr, metrics)
				if err != nil {
					return cli.Exit(fmt.Sprintf("watch: --listen %s: %v", addr, err), 1)
				}
				defer ln.Close()
				fmt.Fprintf(c.App.ErrWriter, "watch: serving /healthz and /metrics on %s\n", ln.Addr())
			}
			host, _ := os.Hostname()
			lease := c.String("lease")
			if lease == "" {
				lease = "mno-watch-" + leaseSuffix(playbook)
			}
			if c.Bool("no-leader-election") {
				lease = ""
			}
			ctrl, err := controller.New(controller.Options{
				Client:        cs,
				Watch:         targets,
				Services:      c.Bool("on-services"),
				Resync:        c.Duration("resync"),
				Debounce:      c.Duration("debounce"),
				Grace:         c.Duration("grace"),
				BackoffMax:    c.Duration("backoff-max"),
				LeaseName:     lease,
				Identity:      fmt.Sprintf("%s/%d", host, os.Getpid()),
				LeaseDuration: c.Duration("lease-duration"),
				RenewDeadline: c.Duration("lease-duration") * 2 / 3,
				RetryPeriod:   c.Duration("lease-duration") / 7,
				Log:           c.App.ErrWriter,
				Metrics:       metrics,
				Run: func(ctx context.Context) controller.RunResult {
					res, _, _ := history.Run(ctx, engine.Options{
						Playbook:  playbook,
						Params:    params,
						Timeout:   c.Duration("timeout"),
						MaxSteps:  c.Uint64("max-steps"),
						Root:      c.String("root"),
						AllowRead: c.StringSlice("allow-read"),
						Config:    cfg,
						Embedded:  mno.Files,
						Stdout:    c.App.ErrWriter,
						Stderr:    c.App.ErrWriter,
					}, history.Options{})
					out := controller.RunResult{Exit: res.Exit, Targets: map[string]bool{}}
					for name, counts := range res.Targets {
						out.Targets[name] = counts.Failed == 0 && counts.Unreachable == 0
					}
					for node := range res.Drift {
						out.Drift = append(out.Drift, node)
					}
					if res.StateRead {
						out.Problems = map[string]int{}
						for _, p := range res.Problems {
							out.Problems[p.Level]++
						}
					}
					return out
				},
			})
			if err != nil {
				return cli.Exit("watch: "+err.Error(), 1)
			}
			if err := ctrl.Run(c.Context); err != nil {
				return cli.Exit("watch: "+err.Error(), 1)
			}
			return nil
		},
	}
}

// leaseSuffix turns a playbook argument into a Lease name part.
func leaseSuffix(playbook string) string {
	base := playbook
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	base = strings.TrimSuffix(base, ".star")
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
