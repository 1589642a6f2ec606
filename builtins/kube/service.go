package kube

import (
	"context"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/engine/journal"
)

// serviceList lists the Services of one namespace, or of all namespaces
// (namespace=""), as a read: it runs in dry-run too.
func serviceList(k *call) (starlark.Value, error) {
	ns := ""
	if err := k.unpack("namespace?", &ns); err != nil {
		return nil, err
	}
	desc := "services"
	if ns != "" {
		desc = ns + "/services"
	}
	var items []corev1.Service
	_, err := k.do(func(c *cluster) journal.Op {
		return journal.Op{Kind: "service.list", Desc: desc,
			Apply: func(ctx context.Context) (journal.Change, error) {
				l, err := c.api.Services(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					return journal.Change{}, c.apiError("list", "services", ns, "", err)
				}
				items = l.Items
				return journal.Change{}, nil
			},
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
	out := make([]starlark.Value, len(items))
	for i := range items {
		out[i] = serviceValue(&items[i])
	}
	return starlark.NewList(out), nil
}

// serviceValue is struct(name, namespace, type, cluster_ip, ip, ports,
// labels, annotations): ip is the first load-balancer ingress IP ("" while
// none is assigned), ports a list of struct(name, port, protocol).
func serviceValue(s *corev1.Service) starlark.Value {
	ip := ""
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			ip = in.IP
			break
		}
	}
	ports := make([]starlark.Value, len(s.Spec.Ports))
	for i, p := range s.Spec.Ports {
		ports[i] = starlarkstruct.FromStringDict(starlark.String("port"), starlark.StringDict{
			"name":     starlark.String(p.Name),
			"port":     starlark.MakeInt(int(p.Port)),
			"protocol": starlark.String(p.Protocol),
		})
	}
	return starlarkstruct.FromStringDict(starlark.String("service"), starlark.StringDict{
		"name":        starlark.String(s.Name),
		"namespace":   starlark.String(s.Namespace),
		"type":        starlark.String(s.Spec.Type),
		"cluster_ip":  starlark.String(s.Spec.ClusterIP),
		"ip":          starlark.String(ip),
		"ports":       starlark.NewList(ports),
		"labels":      dataDict(s.Labels),
		"annotations": dataDict(s.Annotations),
	})
}
