package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/bootstrap"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/history"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "set up this control plane: $MNO_HOME, its SSH identity, the cluster's ConfigMaps",
		Description: "Creates $MNO_HOME (0700) and the control plane's ed25519 identity (0600) if missing, then\n" +
			"creates whichever of the four ConfigMaps (sync-controller-registry, service-registry,\n" +
			"domain-registry, cluster-info) are missing, leaving existing MyNodeOne data untouched.\n" +
			"Prints the public key. Safe to run again.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "cluster-name", Value: "mno", Usage: "cluster-info cluster-name for a new cluster"},
			&cli.StringFlag{Name: "cluster-domain", Usage: "cluster-info cluster-domain (without .local; default: the cluster name)"},
			&cli.StringFlag{Name: "cp-address", Usage: "the control plane's Tailscale `ADDR` (default: `tailscale ip -4`)"},
			&cli.BoolFlag{Name: "no-cluster", Usage: "only create $MNO_HOME and the identity"},
		}, connectionFlags()...),
		Action: func(c *cli.Context) error {
			cfg := configFrom(c)
			pub, created, err := bootstrap.EnsureIdentity(cfg.Home, cfg.Identity)
			if err != nil {
				return cli.Exit("init: "+err.Error(), 1)
			}
			if created {
				fmt.Fprintf(c.App.ErrWriter, "created the control plane identity %s\n", cfg.Identity)
			} else {
				fmt.Fprintf(c.App.ErrWriter, "using the existing identity %s\n", cfg.Identity)
			}
			if !c.Bool("no-cluster") {
				res, _, _ := history.Run(c.Context, engine.Options{
					Playbook: "init",
					Params: []string{
						"cluster_name=" + c.String("cluster-name"),
						"cluster_domain=" + c.String("cluster-domain"),
						"control_plane_ip=" + c.String("cp-address"),
					},
					Config:   cfg,
					Root:     c.String("root"),
					Embedded: mno.Files,
					Stdout:   c.App.ErrWriter,
					Stderr:   c.App.ErrWriter,
				}, history.Options{})
				if res.Exit != 0 {
					return exitError{res.Exit}
				}
			}
			fmt.Fprint(c.App.Writer, pub)
			return nil
		},
	}
}
