package kube_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno/engine/enginetest"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
	"github.com/mno-sh/mno/lab/kubeapi"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

func TestMain(m *testing.M) { kubeapitest.Main(m) }

// env is one test's view of the shared API server: a fresh namespace and an
// admin client for setting up and checking state behind the script's back.
type env struct {
	t      *testing.T
	srv    *kubeapi.Server
	ns     string
	client kubernetes.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := kubeapitest.Server(t)
	e := &env{t: t, srv: srv, ns: kubeapitest.Namespace(t, srv), client: kubeapitest.Client(t, srv)}
	// No controller-manager: the namespace's default ServiceAccount, which
	// admission requires for pods, has to be made by hand.
	_, err := e.client.CoreV1().ServiceAccounts(e.ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// options runs scripts as the cluster admin, with ns and the test helpers
// predeclared.
func (e *env) options() enginetest.Options {
	return enginetest.Options{
		Config:  runctx.Config{Kubeconfig: e.srv.Kubeconfig},
		Globals: starlark.StringDict{"ns": starlark.String(e.ns), "test": e.helpers()},
	}
}

func (e *env) cm(name string) *corev1.ConfigMap {
	e.t.Helper()
	cm, err := e.client.CoreV1().ConfigMaps(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return cm
}

func (e *env) createCM(cm *corev1.ConfigMap) *corev1.ConfigMap {
	e.t.Helper()
	cm, err := e.client.CoreV1().ConfigMaps(e.ns).Create(context.Background(), cm, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return cm
}

// helpers is the `test` module scripts use to arrange and inspect state
// the way a kubelet or another tool would.
func (e *env) helpers() starlark.Value {
	fn := func(name string, f func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin("test."+name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return f(args, kwargs)
		})
	}
	ctx := context.Background()
	return &starlarkstruct.Module{Name: "test", Members: starlark.StringDict{
		// rv(name) is the ConfigMap's resourceVersion, None when missing.
		"rv": fn("rv", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			if err := starlark.UnpackArgs("rv", args, kwargs, "name", &name); err != nil {
				return nil, err
			}
			cm, err := e.client.CoreV1().ConfigMaps(e.ns).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return starlark.None, nil
			}
			if err != nil {
				return nil, err
			}
			return starlark.String(cm.ResourceVersion), nil
		}),
		// create_configmap(name, data, labels={}, annotations={}, binary={})
		"create_configmap": fn("create_configmap", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			var data, labels, annotations, binary starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
			if err := starlark.UnpackArgs("create_configmap", args, kwargs, "name", &name, "data", &data,
				"labels?", &labels, "annotations?", &annotations, "binary?", &binary); err != nil {
				return nil, err
			}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
			var err error
			if cm.Data, err = starkit.StringDict("data", data); err != nil {
				return nil, err
			}
			if cm.Labels, err = starkit.StringDict("labels", labels); err != nil {
				return nil, err
			}
			if cm.Annotations, err = starkit.StringDict("annotations", annotations); err != nil {
				return nil, err
			}
			bin, err := starkit.StringDict("binary", binary)
			if err != nil {
				return nil, err
			}
			for k, v := range bin {
				if cm.BinaryData == nil {
					cm.BinaryData = map[string][]byte{}
				}
				cm.BinaryData[k] = []byte(v)
			}
			_, err = e.client.CoreV1().ConfigMaps(e.ns).Create(ctx, cm, metav1.CreateOptions{})
			return starlark.None, err
		}),
		// meta(name) is struct(labels, annotations, binary) of a ConfigMap.
		"meta": fn("meta", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			if err := starlark.UnpackArgs("meta", args, kwargs, "name", &name); err != nil {
				return nil, err
			}
			cm, err := e.client.CoreV1().ConfigMaps(e.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			bin := starlark.NewDict(len(cm.BinaryData))
			for k, v := range cm.BinaryData {
				bin.SetKey(starlark.String(k), starlark.Bytes(v))
			}
			return starlarkstruct.FromStringDict(starlark.String("meta"), starlark.StringDict{
				"labels": strDict(cm.Labels), "annotations": strDict(cm.Annotations), "binary": bin,
			}), nil
		}),
		// create_node(name, labels={}, ready=None): None means no Ready
		// condition yet, as just after the kubelet registered.
		"create_node": fn("create_node", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			var labels starlark.Value = starlark.None
			var ready starlark.Value = starlark.None
			if err := starlark.UnpackArgs("create_node", args, kwargs, "name", &name, "labels?", &labels, "ready?", &ready); err != nil {
				return nil, err
			}
			l, err := starkit.StringDict("labels", labels)
			if err != nil {
				return nil, err
			}
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.2.3"}, {Type: corev1.NodeHostName, Address: name}}
			if ready != starlark.None {
				n.Status.Conditions = []corev1.NodeCondition{readyCondition(bool(ready.Truth()))}
			}
			_, err = e.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
			if err == nil {
				e.t.Cleanup(func() { e.client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
			}
			return starlark.None, err
		}),
		// set_ready(name, ready, after="0s") reports the Ready condition
		// like a kubelet, after a delay, in the background.
		"set_ready": fn("set_ready", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			var ready bool
			after := starkit.Duration{}
			if err := starlark.UnpackArgs("set_ready", args, kwargs, "name", &name, "ready", &ready, "after?", &after); err != nil {
				return nil, err
			}
			done := make(chan error, 1)
			go func() {
				time.Sleep(after.D)
				done <- e.setReady(name, ready)
			}()
			if after.D == 0 {
				return starlark.None, <-done
			}
			e.t.Cleanup(func() {
				if err := <-done; err != nil {
					e.t.Errorf("set_ready(%s): %v", name, err)
				}
			})
			return starlark.None, nil
		}),
		// create_service(name, type="ClusterIP", port=80, ip="", annotations={})
		// creates a Service; ip is set as its load-balancer ingress, as
		// MetalLB or k3s's servicelb would.
		"create_service": fn("create_service", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name, ip string
			typ, port := "ClusterIP", 80
			ann := &starlark.Dict{}
			if err := starlark.UnpackArgs("create_service", args, kwargs, "name", &name, "type?", &typ, "port?", &port, "ip?", &ip, "annotations?", &ann); err != nil {
				return nil, err
			}
			annotations := map[string]string{}
			for _, kv := range ann.Items() {
				k, _ := starlark.AsString(kv[0])
				v, _ := starlark.AsString(kv[1])
				annotations[k] = v
			}
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceType(typ), Ports: []corev1.ServicePort{{Name: "http", Port: int32(port)}}},
			}
			got, err := e.client.CoreV1().Services(e.ns).Create(ctx, svc, metav1.CreateOptions{})
			if err != nil || ip == "" {
				return starlark.None, err
			}
			got.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
			_, err = e.client.CoreV1().Services(e.ns).UpdateStatus(ctx, got, metav1.UpdateOptions{})
			return starlark.None, err
		}),
		// create_pod(name, node, daemonset=False) binds a pod to node.
		"create_pod": fn("create_pod", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name, node string
			var ds bool
			if err := starlark.UnpackArgs("create_pod", args, kwargs, "name", &name, "node", &node, "daemonset?", &ds); err != nil {
				return nil, err
			}
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app"}}},
			}
			if ds {
				yes := true
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", UID: "0b0c0d0e-0000-4000-8000-000000000001", Controller: &yes}}
			}
			_, err := e.client.CoreV1().Pods(e.ns).Create(ctx, p, metav1.CreateOptions{})
			return starlark.None, err
		}),
		// pods(node) lists "name" (and "name (terminating)") of the pods bound to node.
		"pods": fn("pods", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var node string
			if err := starlark.UnpackArgs("pods", args, kwargs, "node", &node); err != nil {
				return nil, err
			}
			list, err := e.client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
			if err != nil {
				return nil, err
			}
			var out []starlark.Value
			for _, p := range list.Items {
				s := p.Name
				if p.DeletionTimestamp != nil {
					s += " (terminating)"
				}
				out = append(out, starlark.String(s))
			}
			return starlark.NewList(out), nil
		}),
		// kubelet(node) finishes the termination of evicted pods on node,
		// as its kubelet would, until the test ends.
		"kubelet": fn("kubelet", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var node string
			if err := starlark.UnpackArgs("kubelet", args, kwargs, "node", &node); err != nil {
				return nil, err
			}
			e.fakeKubelet(node)
			return starlark.None, nil
		}),
		"hostname": fn("hostname", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			h, err := os.Hostname()
			return starlark.String(h), err
		}),
		// lease(name) is struct(holder, acquire_time, renew_time) or None.
		"lease": fn("lease", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			if err := starlark.UnpackArgs("lease", args, kwargs, "name", &name); err != nil {
				return nil, err
			}
			l, err := e.client.CoordinationV1().Leases(e.ns).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return starlark.None, nil
			}
			if err != nil {
				return nil, err
			}
			return leaseValue(l), nil
		}),
		// create_lease(name, holder, renewed_ago="0s", ttl="1m")
		"create_lease": fn("create_lease", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name, holder string
			ago, ttl := starkit.Duration{}, starkit.Duration{D: time.Minute}
			if err := starlark.UnpackArgs("create_lease", args, kwargs, "name", &name, "holder", &holder, "renewed_ago?", &ago, "ttl?", &ttl); err != nil {
				return nil, err
			}
			_, err := e.client.CoordinationV1().Leases(e.ns).Create(ctx, newLease(name, holder, ago.D, ttl.D), metav1.CreateOptions{})
			return starlark.None, err
		}),
	}}
}

func newLease(name, holder string, renewedAgo, ttl time.Duration) *coordinationv1.Lease {
	t := metav1.NewMicroTime(time.Now().Add(-renewedAgo))
	secs := int32(ttl / time.Second)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs,
			AcquireTime: &t, RenewTime: &t},
	}
}

func leaseValue(l *coordinationv1.Lease) starlark.Value {
	str := func(t *metav1.MicroTime) starlark.Value {
		if t == nil {
			return starlark.None
		}
		return starlark.String(t.UTC().Format(time.RFC3339Nano))
	}
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return starlarkstruct.FromStringDict(starlark.String("lease"), starlark.StringDict{
		"holder": starlark.String(holder), "acquire_time": str(l.Spec.AcquireTime), "renew_time": str(l.Spec.RenewTime),
	})
}

func readyCondition(ready bool) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
		Message: "container runtime network not ready", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}
	if ready {
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
	}
	return c
}

func (e *env) setReady(name string, ready bool) error {
	ctx := context.Background()
	n, err := e.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	n.Status.Conditions = []corev1.NodeCondition{readyCondition(ready)}
	_, err = e.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// fakeKubelet deletes, with no grace period, the pods on node that are
// terminating: what a kubelet does once their containers stopped.
func (e *env) fakeKubelet(node string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		zero := int64(0)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			list, err := e.client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
			if err != nil {
				continue
			}
			for _, p := range list.Items {
				if p.DeletionTimestamp != nil {
					e.client.CoreV1().Pods(e.ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				}
			}
		}
	}()
	e.t.Cleanup(func() { close(stop); wg.Wait() })
}

func strDict(m map[string]string) *starlark.Dict {
	d := starlark.NewDict(len(m))
	for k, v := range m {
		d.SetKey(starlark.String(k), starlark.String(v))
	}
	return d
}

// TestScripts runs testdata/kube/*.star, each file in a fresh namespace.
func TestScripts(t *testing.T) {
	files := globT(t, "../../testdata/kube/*.star")
	for _, f := range files {
		t.Run(baseName(f), func(t *testing.T) {
			enginetest.RunFiles(t, f, newEnv(t).options())
		})
	}
}

func globT(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return files
}

func baseName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".star") }
