package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.starlark.net/starlark"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/starkit"
)

func nodeDrain(k *call) (starlark.Value, error) {
	var name string
	timeout := starkit.Duration{D: 2 * time.Minute}
	if err := k.unpack("name", &name, "timeout?", &timeout); err != nil {
		return nil, err
	}
	var plan drainPlan
	return k.changed(func(c *cluster) journal.Op {
		return journal.Op{Kind: "node.drain", Desc: "node/" + name, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				var err error
				plan, err = c.planDrain(ctx, name)
				return plan.change(), err
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				note, err := c.drain(ctx, &plan, timeout.D)
				ch := plan.change()
				if note != "" {
					ch.Note += "; " + note
				}
				return ch, err
			},
		}
	})
}

// drainPlan is what draining a node involves, as read by the Check.
type drainPlan struct {
	name    string
	node    *corev1.Node // nil when the node does not exist
	cordon  bool
	evict   []corev1.Pod
	skipped int // DaemonSet and mirror pods
}

func (p drainPlan) change() journal.Change {
	if p.node == nil {
		return journal.Change{Note: "absent"}
	}
	var parts []string
	if p.cordon {
		parts = append(parts, "cordon")
	}
	if len(p.evict) > 0 {
		names := make([]string, len(p.evict))
		for i, pod := range p.evict {
			names[i] = pod.Namespace + "/" + pod.Name
		}
		parts = append(parts, fmt.Sprintf("evict %d pods: %s", len(p.evict), strings.Join(names, ", ")))
	}
	if p.skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d DaemonSet/mirror pods stay", p.skipped))
	}
	return journal.Change{Changed: p.cordon || len(p.evict) > 0, Note: strings.Join(parts, "; ")}
}

func (c *cluster) planDrain(ctx context.Context, name string) (drainPlan, error) {
	p := drainPlan{name: name}
	n, err := c.getNode(ctx, name)
	if err != nil || n == nil {
		return p, err
	}
	p.node = n
	p.cordon = !n.Spec.Unschedulable
	pods, err := c.api.Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", name).String(),
	})
	if err != nil {
		return p, c.apiError("list", "pods", "", "", err)
	}
	for _, pod := range pods.Items {
		if stays(&pod) {
			p.skipped++
			continue
		}
		p.evict = append(p.evict, pod)
	}
	return p, nil
}

// stays reports whether drain leaves the pod: DaemonSet pods would be
// recreated at once, and mirror (static) pods cannot be evicted.
func stays(pod *corev1.Pod) bool {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return true
	}
	for _, o := range pod.OwnerReferences {
		if o.Controller != nil && *o.Controller && o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

// drain cordons the node, evicts the planned pods through the Eviction API
// (which honours PodDisruptionBudgets: a refused eviction is retried until
// timeout) and waits for them to be gone. On a node that is not Ready no
// kubelet will confirm termination, so it does not wait: the pods go when
// the Node is deleted.
func (c *cluster) drain(ctx context.Context, p *drainPlan, timeout time.Duration) (string, error) {
	if p.node == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.cordon {
		body := []byte(`{"spec":{"unschedulable":true}}`)
		if _, err := c.api.Nodes().Patch(ctx, p.name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
			return "", c.apiError("cordon (patch)", "node", "", p.name, err)
		}
	}
	// Cordoned: no new pods land on it. List again so pods scheduled since
	// the check are evicted too.
	cordon := p.cordon
	again, err := c.planDrain(ctx, p.name)
	if err != nil {
		return "", err
	}
	if again.node == nil {
		return "node deleted meanwhile", nil
	}
	*p = again
	p.cordon = cordon
	pending := append([]corev1.Pod(nil), p.evict...)
	for len(pending) > 0 {
		var refused []corev1.Pod
		var lastRefusal string
		for _, pod := range pending {
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
			err := c.api.Evict(ctx, ev)
			switch {
			case err == nil || apierrors.IsNotFound(err):
			case apierrors.IsTooManyRequests(err):
				refused = append(refused, pod)
				lastRefusal = pod.Namespace + "/" + pod.Name + ": " + apiMessage(err)
			case ctx.Err() != nil:
				return "", fmt.Errorf("drain node %q: timed out after %s evicting pods", p.name, timeout)
			default:
				return "", c.apiError("evict", "pod", pod.Namespace, pod.Name, err)
			}
		}
		if len(refused) == 0 {
			break
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return "", fmt.Errorf("drain node %q: %d pods could not be evicted within %s (last refusal: %s)", p.name, len(refused), timeout, lastRefusal)
		}
		pending = refused
	}
	if ready, _ := readiness(p.node); !ready {
		if len(p.evict) > 0 {
			return fmt.Sprintf("evicted %d pods; node not Ready, not waiting for them to terminate", len(p.evict)), nil
		}
		return "", nil
	}
	for {
		var left []string
		for _, pod := range p.evict {
			cur, err := c.api.Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil && ctx.Err() == nil:
				return "", c.apiError("get", "pod", pod.Namespace, pod.Name, err)
			case err == nil && cur.UID != pod.UID:
			default:
				left = append(left, pod.Namespace+"/"+pod.Name)
			}
		}
		if len(left) == 0 {
			return "", nil
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return "", fmt.Errorf("drain node %q: %d evicted pods still not gone after %s: %s", p.name, len(left), timeout, strings.Join(left, ", "))
		}
	}
}
