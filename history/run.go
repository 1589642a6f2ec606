package history

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/internal/kubeconfig"
)

// writeTimeout bounds writing a record after the run.
const writeTimeout = 15 * time.Second

// Options configure how a run is recorded.
type Options struct {
	// Keep is how many records the cluster keeps (0: $MNO_HISTORY_KEEP,
	// else DefaultKeep).
	Keep int
	// MaxBytes bounds a record (0: MaxBytes).
	MaxBytes int
	// Warn gets the one line saying why a record was not written (nil:
	// the run's Stderr).
	Warn io.Writer
}

// Connect returns an API client for the cluster of cfg, discovered as the
// kube module does (--kubeconfig, $KUBECONFIG, ~/.kube/config, k3s,
// in-cluster).
func Connect(cfg runctx.Config) (*kclient.Client, error) {
	rc, where, err := kubeconfig.RESTConfig(kubeconfig.Options{Kubeconfig: cfg.Kubeconfig, Context: cfg.KubeContext, Getenv: cfg.Getenv})
	if err != nil {
		return nil, err
	}
	rc.Timeout = writeTimeout
	// A record is a handful of requests; client-go's default 5 per second
	// would make a burst of Events wait.
	rc.QPS, rc.Burst = 50, 100
	c, err := kclient.New(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client (%s): %v", where, err)
	}
	return c, nil
}

// Run runs a playbook as engine.Run does and then records it in the
// cluster when it changed something, found drift or failed (never a dry
// run; never with MNO_HISTORY_KEEP=0). A record that cannot be written is
// one warning line; the run's result is unchanged. It returns the record
// (nil when the run never started) and the name of the ConfigMap written
// ("" when none).
func Run(ctx context.Context, o engine.Options, ho Options) (engine.Result, *Record, string) {
	rec := &Recorder{}
	o.Observers = append(append([]journal.Observer(nil), o.Observers...), rec)
	res := engine.Run(ctx, o)
	m := Meta{Exit: res.Exit, Text: journal.TextOptions{Verbose: o.Verbose, ShowDiff: o.ShowDiff}}
	if res.Err != nil {
		m.Error = strings.TrimSpace(strings.SplitN(res.Err.Error(), "\n", 2)[0])
	}
	if res.Redactor != nil {
		m.Redact = res.Redactor.Redact
	}
	r := rec.Record(m)
	if !r.Wanted() || ho.Keep == 0 && getenv(o.Config)("MNO_HISTORY_KEEP") == "0" {
		return res, r, ""
	}
	warn := ho.Warn
	if warn == nil {
		warn = o.Stderr
	}
	if warn == nil {
		warn = io.Discard
	}
	name, err := Save(ctx, o.Config, r, ho)
	switch {
	case err != nil && name == "":
		fmt.Fprintf(warn, "warning: run %s not recorded in the cluster: %s\n", r.RunID, oneLine(err.Error()))
	case err != nil:
		// The record is there; its Events or the pruning of old records failed.
		fmt.Fprintf(warn, "warning: run %s recorded in ConfigMap %s/%s, but: %s\n", r.RunID, Namespace, name, oneLine(err.Error()))
	}
	return res, r, name
}

func getenv(cfg runctx.Config) func(string) string {
	if cfg.Getenv == nil {
		return func(string) string { return "" }
	}
	return cfg.Getenv
}

// Save writes rec to the cluster of cfg (see Store.Write).
func Save(ctx context.Context, cfg runctx.Config, rec *Record, ho Options) (string, error) {
	keep := ho.Keep
	if keep == 0 {
		if v := getenv(cfg)("MNO_HISTORY_KEEP"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return "", fmt.Errorf("MNO_HISTORY_KEEP=%q is not a number of records to keep (0 turns records off)", v)
			}
			keep = n
		}
	}
	c, err := Connect(cfg)
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	s := &Store{Client: c, Keep: keep, MaxBytes: ho.MaxBytes}
	return s.Write(wctx, rec)
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
