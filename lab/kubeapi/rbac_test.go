package kubeapi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

// grantConfigMapReader lets group read ConfigMaps in ns, with a Role of its own: narrower
// than the stock "view" (which the server aggregates at start, see TestStockClusterRolesAggregated).
func grantConfigMapReader(ctx context.Context, admin kubernetes.Interface, ns, group string) error {
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""},
			Resources: []string{"configmaps"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-reader-" + group},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}},
	}
	_, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{})
	return err
}

// TestStockClusterRolesAggregated: the API server has RBAC on and its bootstrap policy's
// admin, edit and view ClusterRoles, whose rules the server fills at start as
// kube-controller-manager would: a user bound to view may read ConfigMaps but not Secrets or
// write; edit may write and read Secrets; both stay out of RBAC.
func TestStockClusterRolesAggregated(t *testing.T) {
	srv := kubeapitest.Server(t)
	admin := kubeapitest.Client(t, srv)
	ctx := context.Background()
	for _, name := range []string{"cluster-admin", "admin", "edit", "view"} {
		r, err := admin.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(r.Rules) == 0 {
			t.Fatalf("ClusterRole %s: %v, %d rules", name, err, len(r.Rules))
		}
	}
	tls := srv.TLSDir()
	for _, f := range []string{"client-ca.crt", "client-ca.key", "server-ca.crt"} {
		if fi, err := os.Stat(filepath.Join(tls, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", f, err)
		}
	}
	check := func(role, verb, resource string, want bool) {
		t.Helper()
		rule := ""
		for _, r := range mustRole(t, admin, role).Rules {
			if contains(r.Resources, resource) && (contains(r.Verbs, verb) || contains(r.Verbs, "*")) {
				rule = "yes"
			}
		}
		if (rule != "") != want {
			t.Errorf("ClusterRole %s allows %s %s: %v, want %v", role, verb, resource, rule != "", want)
		}
	}
	check("view", "get", "configmaps", true)
	check("view", "get", "secrets", false)
	check("view", "create", "configmaps", false)
	check("edit", "create", "configmaps", true)
	check("edit", "get", "secrets", true)
	check("edit", "create", "rolebindings", false)
	check("admin", "create", "rolebindings", true)
}

func mustRole(t *testing.T, c kubernetes.Interface, name string) *rbacv1.ClusterRole {
	t.Helper()
	r, err := c.RbacV1().ClusterRoles().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
