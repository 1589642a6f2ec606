package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/connrotation"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	kcfg "github.com/mno-sh/mno/internal/kubeconfig"
)

// K3sKubeconfig is where k3s writes the admin kubeconfig on a server node,
// the last file tried before the in-cluster service account.
const K3sKubeconfig = kcfg.K3s

// Client timeouts: an API server on the control plane answers in
// milliseconds, so anything slower is a fault to report, not to wait for.
const (
	dialTimeout    = 5 * time.Second
	requestTimeout = 30 * time.Second
	probeTimeout   = 10 * time.Second
)

// cluster is the per-run API client with what error messages need to say
// about where it points.
type cluster struct {
	api *kclient.Client
	// configMaps is api's ConfigMaps; the read-modify-write tests give it
	// client-go's fake clientset to script conflicts.
	configMaps func(ns string) configMapAPI
	server     string // API server URL
	source     string // where the configuration came from
	context    string // kubeconfig context, "" in-cluster
}

type clusterKey struct{}

// clusterOf returns the run's client, building it on first use so a
// playbook that never calls kube needs no cluster.
func clusterOf(r *runctx.Run) (*cluster, error) {
	return runctx.Resource(r, clusterKey{}, func() (*cluster, error) { return connect(r) })
}

// connect discovers the configuration, builds the client and checks once
// that the server answers, so an unreachable cluster is one clear error.
func connect(r *runctx.Run) (*cluster, error) {
	loc, err := kcfg.Find(kcfg.Options{Kubeconfig: r.Config.Kubeconfig, Context: r.Config.KubeContext, Getenv: r.Config.Getenv})
	if err != nil {
		return nil, err
	}
	rc := rest.CopyConfig(loc.Config)
	rc.Timeout = requestTimeout
	// The transport is the run's own (client-go caches none with a custom
	// Dial), so its connections are closed with the run: under `mno watch`
	// an idle one per run would otherwise linger until client-go's 90 s
	// idle timeout.
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext)
	r.OnClose(dialer.CloseAll)
	rc.Dial = dialer.DialContext
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "mno"
	rc.WarningHandler = warnings{r}
	api, err := kclient.New(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s (%s): %v", rc.Host, loc.Source, err)
	}
	c := newCluster(api, rc.Host, loc.Source, loc.Context)
	ctx, cancel := context.WithTimeout(r.Ctx, probeTimeout)
	defer cancel()
	if _, err := api.ServerVersion(ctx); err != nil {
		if r.Ctx.Err() != nil {
			return nil, r.Err()
		}
		return nil, c.probeError(err)
	}
	return c, nil
}

func newCluster(api *kclient.Client, server, source, context string) *cluster {
	return &cluster{
		api:        api,
		configMaps: func(ns string) configMapAPI { return api.ConfigMaps(ns) },
		server:     server, source: source, context: context,
	}
}

// configMapAPI is what the module does with ConfigMaps: the methods of
// kclient's ConfigMaps, which are client-go's typed client's too.
type configMapAPI interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ConfigMap, error)
	Create(ctx context.Context, cm *corev1.ConfigMap, opts metav1.CreateOptions) (*corev1.ConfigMap, error)
	Update(ctx context.Context, cm *corev1.ConfigMap, opts metav1.UpdateOptions) (*corev1.ConfigMap, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

func (c *cluster) where() string {
	if c.context != "" {
		return fmt.Sprintf("%s, context %q", c.source, c.context)
	}
	return c.source
}

func (c *cluster) probeError(err error) error {
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server %s rejected the credentials from %s (Unauthorized)", c.server, c.where())
	case isTransport(err):
		return fmt.Errorf("cannot reach the Kubernetes API server %s (from %s): %v", c.server, c.where(), transportCause(err))
	}
	return fmt.Errorf("the Kubernetes API server %s (from %s) failed: %v", c.server, c.where(), err)
}

// warnings passes the API server's deprecation warnings to the journal
// instead of klog's stderr lines.
type warnings struct{ r *runctx.Run }

func (w warnings) HandleWarningHeader(code int, _ string, text string) {
	if code == 299 && text != "" {
		w.r.Journal.Warn("", Target, "API server: "+text)
	}
}

// isTransport reports whether err means the server was not reached or did
// not answer (as opposed to an API status).
func isTransport(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// transportCause strips client-go's `Get "https://…/version?timeout=…":`
// prefix, keeping the network error itself.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiError turns a client-go error into a message naming what was tried and
// where, with the network failures marked unreachable for the journal.
func (c *cluster) apiError(verb, resource, namespace, name string, err error) error {
	if err == nil {
		return nil
	}
	obj := fmt.Sprintf("%s %q", resource, name)
	if name == "" {
		obj = resource
	}
	if namespace != "" {
		obj += fmt.Sprintf(" in namespace %q", namespace)
	}
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("forbidden to %s %s (RBAC): %s", verb, obj, apiMessage(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s %s: the API server %s rejected the credentials from %s (Unauthorized)", verb, obj, c.server, c.where())
	case isTransport(err):
		return journal.Unreachable(fmt.Errorf("%s %s: cannot reach the Kubernetes API server %s: %v", verb, obj, c.server, transportCause(err)))
	}
	return fmt.Errorf("%s %s: %s", verb, obj, apiMessage(err))
}

func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}
