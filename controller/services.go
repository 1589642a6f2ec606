package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// watchServices triggers a run when a Service is created or deleted, or
// when what discover records of it changes (type, ports, load-balancer
// address, annotations) — not on every status or metadata update.
func (c *Controller) watchServices(ctx context.Context, stop chan struct{}) error {
	svcs := c.o.Client.Services("")
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return svcs.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return svcs.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Service{}, 0, cache.Indexers{})
	var mu sync.Mutex
	synced := false
	last := map[string]string{} // namespace/name → fingerprint
	seen := func(obj any, deleted bool) {
		s, ok := obj.(*corev1.Service)
		if !ok {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				s, _ = d.Obj.(*corev1.Service)
			}
		}
		if s == nil {
			return
		}
		key := s.Namespace + "/" + s.Name
		mu.Lock()
		prev, had := last[key]
		fp := ""
		if deleted {
			delete(last, key)
		} else {
			fp = serviceFingerprint(s)
			last[key] = fp
		}
		changed := deleted && had || !deleted && prev != fp
		trigger := synced && changed
		mu.Unlock()
		if trigger {
			why := "changed"
			switch {
			case deleted:
				why = "deleted"
			case !had:
				why = "created"
			}
			c.Trigger(fmt.Sprintf("service %s %s", key, why))
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { seen(obj, false) },
		UpdateFunc: func(_, obj any) { seen(obj, false) },
		DeleteFunc: func(obj any) { seen(obj, true) },
	})
	go inf.Run(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch services: cache did not sync")
	}
	mu.Lock()
	synced = true
	mu.Unlock()
	return nil
}

// serviceFingerprint digests what discover reads of a Service.
func serviceFingerprint(s *corev1.Service) string {
	b, _ := json.Marshal([]any{s.Spec.Type, s.Spec.ClusterIP, s.Spec.Ports, s.Status.LoadBalancer.Ingress, s.Annotations})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
