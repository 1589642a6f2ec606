package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/lab/internal/proc"
)

// DemoPort is the demo service's port.
const DemoPort = 8080

// startDemo runs the demo HTTP service in the first worker (else the first
// node), on its address, and publishes it in service-registry as "demo":
// once a VPS is added, Traefik on it serves demo.<its domain>.
func (c *Cluster) startDemo(ctx context.Context) error {
	node := c.Nodes[0]
	for _, n := range c.Nodes {
		if n.Kind == KindWorker {
			node = n
			break
		}
	}
	h, err := c.Host(node.Name)
	if err != nil {
		return err
	}
	c.Demo = Demo{Name: "demo", Node: node.Name, Addr: node.Addr, Port: DemoPort}
	listen := net.JoinHostPort(node.Addr, strconv.Itoa(DemoPort))
	logf, err := os.OpenFile(filepath.Join(c.Dir, "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := h.Command(context.Background(), true, c.Exe, "lab", "backend", "--listen", listen, "--node", node.Name)
	cmd.Stdout, cmd.Stderr = logf, logf
	var exited <-chan error
	if c.Detached {
		exited, err = proc.StartDetached(cmd)
	} else {
		exited, err = proc.Start(cmd)
	}
	if err != nil {
		return fmt.Errorf("demo service: %w", err)
	}
	c.Demo.Proc, _ = proc.RefOf(cmd.Process.Pid)
	for deadline := time.Now().Add(15 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("demo service exited (%v); see %s", werr, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo service: nothing listens on %s after 15s: %v", listen, err)
		}
	}
	return c.publishDemo(ctx)
}

// DemoNamespace holds the demo's Service object.
const DemoNamespace = "mno-lab"

// publishDemo registers the demo service in service-registry, public, as
// MyNodeOne's service-registry.sh would, and gives it a LoadBalancer
// Service object with its address (as MetalLB would), so `mno run discover`
// finds it as it finds a real cluster's apps.
func (c *Cluster) publishDemo(ctx context.Context) error {
	cs, err := c.client()
	if err != nil {
		return err
	}
	if err := c.demoService(ctx, cs); err != nil {
		return fmt.Errorf("demo Service: %w", err)
	}
	cms := cs.ConfigMaps("kube-system")
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, "service-registry", metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		if create {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "service-registry", Namespace: "kube-system"}}
		} else if err != nil {
			return err
		}
		services := map[string]any{}
		if s := cm.Data["services.json"]; s != "" {
			if err := json.Unmarshal([]byte(s), &services); err != nil {
				return fmt.Errorf("service-registry services.json: %w", err)
			}
		}
		services[c.Demo.Name] = map[string]any{
			"subdomain": c.Demo.Name, "namespace": DemoNamespace, "service": c.Demo.Name,
			"ip": c.Demo.Addr, "port": c.Demo.Port, "public": true,
			"updated": time.Now().UTC().Format("2006-01-02T15:04:05Z"),
		}
		data, _ := json.MarshalIndent(services, "", "  ")
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data["services.json"] = string(data) + "\n"
		if create {
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		return err
	})
}

// demoService creates the namespace and the demo's LoadBalancer Service
// (unless they exist) and sets its load-balancer address.
func (c *Cluster) demoService(ctx context.Context, cs *kclient.Client) error {
	_, err := cs.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DemoNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	svcs := cs.Services(DemoNamespace)
	svc, err := svcs.Get(ctx, c.Demo.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		svc, err = svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: c.Demo.Name, Namespace: DemoNamespace},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				Ports: []corev1.ServicePort{{Name: "http", Port: int32(c.Demo.Port)}}},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: c.Demo.Addr}}
	_, err = svcs.UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	return err
}

// ServeDemo is the demo service (`mno lab backend`): it answers every
// request with a line naming itself and what it was asked.
func ServeDemo(ctx context.Context, listen, node string, log io.Writer) error {
	srv := &http.Server{Addr: listen, ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(log, "%s %s %s%s\n", time.Now().UTC().Format(time.RFC3339), r.RemoteAddr, r.Host, r.URL.Path)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "Hello from the mno lab demo service on %s (%s): you asked for %s%s\n", node, listen, r.Host, r.URL.Path)
		})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(log, "demo service listening on %s\n", listen)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
