package kclient

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The resources mno uses. To add one: a Kind here, its entry in kinds, and
// an accessor below if callers want one.
var (
	ConfigMaps          = Kind[*corev1.ConfigMap, *corev1.ConfigMapList]{Version: "v1", Resource: "configmaps", Namespaced: true}
	Nodes               = Kind[*corev1.Node, *corev1.NodeList]{Version: "v1", Resource: "nodes"}
	Pods                = Kind[*corev1.Pod, *corev1.PodList]{Version: "v1", Resource: "pods", Namespaced: true}
	Namespaces          = Kind[*corev1.Namespace, *corev1.NamespaceList]{Version: "v1", Resource: "namespaces"}
	Services            = Kind[*corev1.Service, *corev1.ServiceList]{Version: "v1", Resource: "services", Namespaced: true}
	Leases              = Kind[*coordinationv1.Lease, *coordinationv1.LeaseList]{Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Namespaced: true}
	ClusterRoles        = Kind[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList]{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	ClusterRoleBindings = Kind[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList]{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	Events              = Kind[*corev1.Event, *corev1.EventList]{Version: "v1", Resource: "events", Namespaced: true}
	Roles               = Kind[*rbacv1.Role, *rbacv1.RoleList]{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles", Namespaced: true}
	RoleBindings        = Kind[*rbacv1.RoleBinding, *rbacv1.RoleBindingList]{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings", Namespaced: true}
)

// kinds are registered in every client's scheme.
var kinds = []registrar{ConfigMaps, Nodes, Pods, Namespaces, Services, Leases, ClusterRoles, ClusterRoleBindings, Roles, RoleBindings, Events, evictions{}}

// ConfigMaps in namespace ns.
func (c *Client) ConfigMaps(ns string) Objects[*corev1.ConfigMap, *corev1.ConfigMapList] {
	return For(c, ConfigMaps, ns)
}

// Nodes of the cluster.
func (c *Client) Nodes() Objects[*corev1.Node, *corev1.NodeList] { return For(c, Nodes, "") }

// Pods in namespace ns ("" lists across all namespaces).
func (c *Client) Pods(ns string) Objects[*corev1.Pod, *corev1.PodList] { return For(c, Pods, ns) }

// Namespaces of the cluster.
func (c *Client) Namespaces() Objects[*corev1.Namespace, *corev1.NamespaceList] {
	return For(c, Namespaces, "")
}

// Services in namespace ns ("" lists across all namespaces).
func (c *Client) Services(ns string) Objects[*corev1.Service, *corev1.ServiceList] {
	return For(c, Services, ns)
}

// Leases in namespace ns.
func (c *Client) Leases(ns string) Objects[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return For(c, Leases, ns)
}

// ClusterRoles of the cluster.
func (c *Client) ClusterRoles() Objects[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList] {
	return For(c, ClusterRoles, "")
}

// ClusterRoleBindings of the cluster.
func (c *Client) ClusterRoleBindings() Objects[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList] {
	return For(c, ClusterRoleBindings, "")
}

// evictions registers policy/v1 Eviction, the body Evict posts.
type evictions struct{}

func (evictions) groupVersion() schema.GroupVersion { return policyv1.SchemeGroupVersion }
func (evictions) register(s *runtime.Scheme) {
	s.AddKnownTypes(policyv1.SchemeGroupVersion, &policyv1.Eviction{})
}

// Evict asks the API server to evict a pod through the Eviction API, which
// honours PodDisruptionBudgets (a refusal is a TooManyRequests error).
func (c *Client) Evict(ctx context.Context, ev *policyv1.Eviction) error {
	return For(c, Pods, ev.Namespace).request("POST", ev.Name, "eviction").Body(ev).Do(ctx).Error()
}

// Events in namespace ns (core/v1 Events: what `kubectl describe` shows).
func (c *Client) Events(ns string) Objects[*corev1.Event, *corev1.EventList] {
	return For(c, Events, ns)
}
