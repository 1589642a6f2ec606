// Package rbac holds mno's own rights in the cluster (mno.yaml, the one list) and applies
// them: a ClusterRole and Roles (in kube-system, in mno-history for the run records, and in
// default for the Events on Nodes), all called mno:controller, bound to the identity mno runs as — the user mno:controller of `mno install systemd`'s kubeconfig, or
// the ServiceAccount of `mno install kubernetes`.
package rbac

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/mno-sh/mno/builtins/kube/kclient"
)

// YAML is mno.yaml: the ClusterRole and the Roles.
//
//go:embed mno.yaml
var YAML []byte

// Name is the name of the roles and their bindings; User is the user name of the
// certificate `mno install systemd` issues; Namespace is where the cluster's state (and
// the first Role) is.
const (
	Name      = "mno:controller"
	User      = "mno:controller"
	Namespace = "kube-system"
)

// Roles are mno's roles, as mno.yaml has them.
type Roles struct {
	ClusterRole *rbacv1.ClusterRole
	// Roles are the namespaced roles, in mno.yaml's order, each in its own namespace
	// (kube-system first).
	Roles []*rbacv1.Role
}

// Load parses mno.yaml.
func Load() (Roles, error) { return parse(YAML) }

// parse reads a ClusterRole and one Role per namespace, all called Name, from y.
func parse(y []byte) (Roles, error) {
	var r Roles
	for i, doc := range bytes.Split(y, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return r, fmt.Errorf("mno.yaml document %d: %w", i+1, err)
		}
		switch meta.Kind {
		case "ClusterRole":
			r.ClusterRole = &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict(doc, r.ClusterRole); err != nil {
				return r, fmt.Errorf("mno.yaml ClusterRole: %w", err)
			}
		case "Role":
			role := &rbacv1.Role{}
			if err := yaml.UnmarshalStrict(doc, role); err != nil {
				return r, fmt.Errorf("mno.yaml Role: %w", err)
			}
			if role.Namespace == "" || role.Name != Name {
				return r, fmt.Errorf("mno.yaml document %d: a Role needs the name %s and a namespace", i+1, Name)
			}
			for _, o := range r.Roles {
				if o.Namespace == role.Namespace {
					return r, fmt.Errorf("mno.yaml document %d: a second Role in %s", i+1, role.Namespace)
				}
			}
			r.Roles = append(r.Roles, role)
		default:
			return r, fmt.Errorf("mno.yaml document %d: unexpected kind %q", i+1, meta.Kind)
		}
	}
	if r.ClusterRole == nil || len(r.Roles) == 0 {
		return r, fmt.Errorf("mno.yaml lacks the ClusterRole or a Role")
	}
	return r, nil
}

// Namespaces are the namespaces of r's Roles that mno creates: every one but kube-system
// and default, which every cluster has (mno-history, the run records').
func (r Roles) Namespaces() []string {
	var out []string
	for _, role := range r.Roles {
		if role.Namespace != metav1.NamespaceSystem && role.Namespace != metav1.NamespaceDefault {
			out = append(out, role.Namespace)
		}
	}
	return out
}

// NamespaceObject is namespace ns as mno creates it.
func NamespaceObject(ns string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "mno"}},
	}
}

// MustLoad is Load for the embedded file, which a test keeps valid.
func MustLoad() Roles {
	r, err := Load()
	if err != nil {
		panic(err)
	}
	return r
}

// UserSubject is the certificate user mno:controller; ServiceAccount a ServiceAccount.
func UserSubject() rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: User}
}

// ServiceAccount is the subject for ServiceAccount name in namespace ns.
func ServiceAccount(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

// Bindings bind the roles r to subject: the ClusterRole, and each Role in its namespace.
func Bindings(r Roles, subject rbacv1.Subject) (*rbacv1.ClusterRoleBinding, []*rbacv1.RoleBinding) {
	labels := map[string]string{"app.kubernetes.io/managed-by": "mno"}
	crb := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: Name, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: Name},
		Subjects:   []rbacv1.Subject{subject},
	}
	var rbs []*rbacv1.RoleBinding
	for _, role := range r.Roles {
		rbs = append(rbs, &rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: role.Namespace, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects:   []rbacv1.Subject{subject},
		})
	}
	return crb, rbs
}

// Apply creates the Roles' namespaces that are missing (Namespaces), creates or replaces the
// roles r and binds them to subject. It needs a cluster admin (it grants what it holds). It
// returns what it changed, for the caller to report.
func Apply(ctx context.Context, c *kclient.Client, r Roles, subject rbacv1.Subject) ([]string, error) {
	crb, rbs := Bindings(r, subject)
	var changed []string
	note := func(kind, name string, did bool, err error) error {
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		if did {
			changed = append(changed, kind+" "+name)
		}
		return nil
	}
	for _, ns := range r.Namespaces() {
		_, err := c.Namespaces().Create(ctx, NamespaceObject(ns), metav1.CreateOptions{FieldManager: "mno"})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err := note("Namespace", ns, err == nil, err); err != nil {
			return changed, err
		}
	}
	did, err := upsert(ctx, kclient.For(c, kclient.ClusterRoles, ""), r.ClusterRole, func(cur, want *rbacv1.ClusterRole) bool {
		same := equalJSON(cur.Rules, want.Rules)
		cur.Rules, cur.Labels = want.Rules, want.Labels
		return !same
	})
	if err := note("ClusterRole", r.ClusterRole.Name, did, err); err != nil {
		return changed, err
	}
	for _, role := range r.Roles {
		did, err = upsert(ctx, kclient.For(c, kclient.Roles, role.Namespace), role, func(cur, want *rbacv1.Role) bool {
			same := equalJSON(cur.Rules, want.Rules)
			cur.Rules, cur.Labels = want.Rules, want.Labels
			return !same
		})
		if err := note("Role", role.Namespace+"/"+role.Name, did, err); err != nil {
			return changed, err
		}
	}
	did, err = upsert(ctx, kclient.For(c, kclient.ClusterRoleBindings, ""), crb, func(cur, want *rbacv1.ClusterRoleBinding) bool {
		same := equalJSON(cur.Subjects, want.Subjects)
		cur.Subjects = want.Subjects
		return !same
	})
	if err := note("ClusterRoleBinding", crb.Name, did, err); err != nil {
		return changed, err
	}
	for _, rb := range rbs {
		did, err = upsert(ctx, kclient.For(c, kclient.RoleBindings, rb.Namespace), rb, func(cur, want *rbacv1.RoleBinding) bool {
			same := equalJSON(cur.Subjects, want.Subjects)
			cur.Subjects = want.Subjects
			return !same
		})
		if err := note("RoleBinding", rb.Namespace+"/"+rb.Name, did, err); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// upsert creates want, or updates the existing object with merge (which says whether it
// changed anything).
func upsert[T kclient.Object, L runtime.Object](ctx context.Context, o kclient.Objects[T, L], want T, merge func(cur, want T) bool) (bool, error) {
	cur, err := o.Get(ctx, want.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = o.Create(ctx, want, metav1.CreateOptions{FieldManager: "mno"})
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	if !merge(cur, want) {
		return false, nil
	}
	_, err = o.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "mno"})
	return err == nil, err
}

func equalJSON(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return bytes.Equal(x, y)
}
