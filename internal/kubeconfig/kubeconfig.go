// Package kubeconfig finds the Kubernetes client configuration the way
// kubectl does, plus the k3s server's default: for the kube builtins and for
// the commands (mno watch, mno state) alike.
package kubeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// K3s is where k3s writes the admin kubeconfig on a server node, the last
// file tried before the in-cluster service account.
const K3s = "/etc/rancher/k3s/k3s.yaml"

// dialTimeout: an API server on the control plane answers in milliseconds.
const dialTimeout = 5 * time.Second

// Options say where to look first.
type Options struct {
	Kubeconfig string              // --kubeconfig: the only file tried when set
	Context    string              // --context: else the current context
	Getenv     func(string) string // nil: no environment
}

// Found is a configuration Find found.
type Found struct {
	Config  *rest.Config
	Source  string // where: the file, "$KUBECONFIG …" or "in-cluster service account"
	Context string // the context used, "" in-cluster
}

// Where describes the source and context, for messages.
func (f *Found) Where() string {
	if f.Context == "" {
		return f.Source
	}
	return fmt.Sprintf("%s, context %q", f.Source, f.Context)
}

// Find finds the client configuration as find does, with the k3s default
// path and the real file system.
func Find(o Options) (*Found, error) { return find(o, K3s, os.Stat) }

// find finds the client configuration like kubectl, plus the k3s
// default: --kubeconfig alone when given; else $KUBECONFIG, ~/.kube/config,
// /etc/rancher/k3s/k3s.yaml and the in-cluster service account, in that
// order. Missing places are skipped; a file that exists but cannot be used is
// an error (never a silent fall-through to another cluster). When nothing
// works the error lists every place tried and why.
func find(cfg Options, k3s string, stat func(string) (fs.FileInfo, error)) (*Found, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if cfg.Kubeconfig != "" {
		loc, err := fromFiles([]string{cfg.Kubeconfig}, cfg.Context)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %v", cfg.Kubeconfig, err)
		}
		loc.Source = cfg.Kubeconfig
		return loc, nil
	}
	var tried []string
	failed := func(err error) error {
		msg := err.Error()
		if len(tried) > 0 {
			msg += "\n(after trying: " + strings.Join(tried, "; ") + ")"
		}
		return errors.New(msg)
	}
	if env := getenv("KUBECONFIG"); env != "" {
		var present []string
		var why []string
		for _, p := range filepath.SplitList(env) {
			if p == "" {
				continue
			}
			if _, err := stat(p); err != nil {
				why = append(why, p+": "+statReason(err))
				continue
			}
			present = append(present, p)
		}
		if len(present) == 0 {
			tried = append(tried, "$KUBECONFIG ("+strings.Join(why, ", ")+")")
		} else {
			loc, err := fromFiles(present, cfg.Context)
			if err != nil {
				return nil, failed(fmt.Errorf("$KUBECONFIG %s: %v", env, err))
			}
			loc.Source = "$KUBECONFIG " + env
			return loc, nil
		}
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	var files []string
	if home != "" {
		files = append(files, filepath.Join(home, ".kube", "config"))
	} else {
		tried = append(tried, "~/.kube/config: no home directory")
	}
	files = append(files, k3s)
	for _, p := range files {
		if _, err := stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				tried = append(tried, p+": "+statReason(err))
				continue
			}
			return nil, failed(fmt.Errorf("%s: %v", p, hint(p, err)))
		}
		loc, err := fromFiles([]string{p}, cfg.Context)
		if err != nil {
			return nil, failed(fmt.Errorf("%s: %v", p, hint(p, err)))
		}
		loc.Source = p
		return loc, nil
	}
	if getenv("KUBERNETES_SERVICE_HOST") == "" {
		tried = append(tried, "in-cluster service account: not running in a pod ($KUBERNETES_SERVICE_HOST is unset)")
	} else {
		rc, err := rest.InClusterConfig()
		if err == nil {
			return &Found{Config: rc, Source: "in-cluster service account"}, nil
		}
		tried = append(tried, "in-cluster service account: "+err.Error())
	}
	return nil, fmt.Errorf("no Kubernetes configuration found; tried:\n  %s\nset --kubeconfig or $KUBECONFIG",
		strings.Join(tried, "\n  "))
}

func statReason(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "not found"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// hint adds the usual k3s remedy to a permission error on its kubeconfig.
func hint(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) && strings.HasSuffix(path, "/k3s.yaml") {
		return fmt.Errorf("%v (k3s makes it readable by root only: run as root, or pass --kubeconfig)", err)
	}
	return err
}

// fromFiles loads and merges kubeconfig files (resolving their relative
// paths) and picks context, or the current one.
func fromFiles(paths []string, context string) (*Found, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: paths}
	if len(paths) == 1 {
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: paths[0]}
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, err
	}
	name := context
	if name == "" {
		name = raw.CurrentContext
	}
	if name == "" {
		return nil, errors.New("no current-context set (pass --context)")
	}
	if _, ok := raw.Contexts[name]; !ok {
		return nil, fmt.Errorf("context %q not found (have: %s)", name, strings.Join(contextNames(raw.Contexts), ", "))
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	if err != nil {
		return nil, err
	}
	return &Found{Config: rc, Context: name}, nil
}

func contextNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	if len(names) == 0 {
		return []string{"none"}
	}
	slices.Sort(names)
	return names
}

// RESTConfig finds the client configuration the way the kube module does
// (--kubeconfig, $KUBECONFIG, ~/.kube/config, the k3s default, in-cluster)
// for Go callers such as `mno watch`. It returns the configuration and a
// description of where it came from.
func RESTConfig(o Options) (*rest.Config, string, error) {
	loc, err := Find(o)
	if err != nil {
		return nil, "", err
	}
	rc := rest.CopyConfig(loc.Config)
	rc.Dial = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	rc.UserAgent = "mno"
	return rc, loc.Where(), nil
}
