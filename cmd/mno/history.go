package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mno-sh/mno/history"
)

func kubeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` (default: $KUBECONFIG, ~/.kube/config, /etc/rancher/k3s/k3s.yaml, in-cluster)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context `NAME`"},
	}
}

func historyStore(c *cli.Context) (*history.Store, error) {
	cl, err := history.Connect(configFrom(c))
	if err != nil {
		return nil, err
	}
	return &history.Store{Client: cl}, nil
}

// parseSince reads --since: a duration back from now (90m, 24h, 7d) or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration back from now (90m, 24h, 7d) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "list the recorded runs (every run that changed something or failed), oldest first",
		Description: "Each run that changed something, found drift or failed leaves a record in the cluster: ConfigMap\n" +
			history.Namespace + "/mno-run-<runid>. `mno show RUN` prints one as the run printed it. Records an earlier\n" +
			"mno kept in " + history.LegacyNamespace + " are listed and shown too, never pruned: " + legacyDelete + "\n" +
			"deletes them.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "only the runs that affected node `NAME`"},
			&cli.StringFlag{Name: "since", Usage: "only the runs started since `WHEN`: a duration back from now (24h, 7d) or an RFC 3339 time"},
		}, kubeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("history: unexpected argument %q (filters are --node and --since)", c.Args().First()), 1)
			}
			since, err := parseSince(c.String("since"), time.Now())
			if err != nil {
				return cli.Exit("history: "+err.Error(), 1)
			}
			s, err := historyStore(c)
			if err != nil {
				return cli.Exit("history: "+err.Error(), 1)
			}
			node := c.String("node")
			list, err := s.List(c.Context, node, since)
			if err != nil {
				return cli.Exit("history: "+err.Error(), 1)
			}
			if len(list) == 0 {
				fmt.Fprintln(c.App.ErrWriter, "no recorded runs")
				return nil
			}
			legacy := 0
			for _, r := range list {
				if r.Namespace == history.LegacyNamespace {
					legacy++
				}
			}
			if legacy > 0 {
				fmt.Fprintf(c.App.ErrWriter, "note: %d of these records are in %s, where an earlier mno kept them; they are never pruned: %s deletes them\n",
					legacy, history.LegacyNamespace, legacyDelete)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tSTARTED\tDURATION\tPLAYBOOK\tRESULT\tBY\tNODES")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.Start.Local().Format("2006-01-02 15:04:05"),
					r.End.Sub(r.Start).Round(time.Millisecond), r.Playbook, r.Result, r.By, nodesColumn(r))
			}
			return tw.Flush()
		},
	}
}

// legacyDelete deletes the records an earlier mno kept in kube-system (by their label).
const legacyDelete = "`kubectl delete configmap -n " + history.LegacyNamespace + " -l " + history.LabelRecord + "=run`"

// nodesColumn lists the affected nodes with their results.
func nodesColumn(r history.Summary) string {
	var parts []string
	for n, res := range r.Nodes {
		parts = append(parts, n+"="+res)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	s := strings.Join(parts, ",")
	if len(s) > 80 {
		s = s[:77] + "…"
	}
	return s
}

func showCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "print a recorded run as it printed its report",
		ArgsUsage: "RUN",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "only the effects and messages of node `NAME`"},
			&cli.BoolFlag{Name: "diff", Usage: "show the diffs of real changes too (a dry run always shows them)"},
		}, kubeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("show: want one RUN id (`mno history` lists them)", 1)
			}
			s, err := historyStore(c)
			if err != nil {
				return cli.Exit("show: "+err.Error(), 1)
			}
			rec, err := s.Get(c.Context, c.Args().First())
			if err != nil {
				return cli.Exit("show: "+err.Error(), 1)
			}
			node := c.String("node")
			if node != "" {
				if _, ok := rec.Targets[node]; !ok {
					return cli.Exit(fmt.Sprintf("show: run %s did not touch node %s (it touched %s)", rec.RunID, node, strings.Join(targetNames(rec), ", ")), 1)
				}
			}
			w := c.App.Writer
			fmt.Fprintf(w, "# run %s: %s (sha256 %s), by %s, %s → %s, %s (exit %d)\n", rec.RunID, rec.Playbook, short(rec.SourceSHA256),
				rec.By, rec.Start.Local().Format(time.RFC3339), rec.End.Local().Format(time.RFC3339), rec.Result, rec.Exit)
			history.Render(w, rec, c.Bool("diff"), node)
			return nil
		},
	}
}

func targetNames(rec *history.Record) []string {
	var out []string
	for t := range rec.Targets {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
