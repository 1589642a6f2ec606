package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/starkit"
)

// A ClusterRoleBinding binds one user (a laptop's certificate) to one ClusterRole; its
// annotations carry what the binding was made for (a laptop's enrolment). Writing one needs
// RBAC rights on clusterrolebindings, far more than writing a ConfigMap.

func bindingApply(k *call) (starlark.Value, error) {
	var (
		name, user, role string
		annV, labelsV    starlark.Value = starlark.None, starlark.None
	)
	if err := k.unpack("name", &name, "user", &user, "role", &role, "annotations?", &annV, "labels?", &labelsV); err != nil {
		return nil, err
	}
	ann, err := starkit.StringDict("annotations", annV)
	if err != nil {
		return nil, k.errorf("%v", err)
	}
	lbls, err := starkit.StringDict("labels", labelsV)
	if err != nil {
		return nil, k.errorf("%v", err)
	}
	if err := checkObjectName(name); err != nil {
		return nil, k.errorf("name: %v", err)
	}
	if err := CheckCredentialName("user", user); err != nil {
		return nil, k.errorf("%v", err)
	}
	if err := checkObjectName(role); err != nil {
		return nil, k.errorf("role: %v", err)
	}
	want := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, Annotations: ann},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	var cur *rbacv1.ClusterRoleBinding
	return k.changed(func(c *cluster) journal.Op {
		api := c.api.ClusterRoleBindings()
		return journal.Op{Kind: "binding.apply", Desc: "clusterrolebinding/" + name, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				var err error
				if cur, err = c.getBinding(ctx, name); err != nil {
					return journal.Change{}, err
				}
				d := diffBindings(name, cur, want)
				return journal.Change{Changed: d != "", Diff: d}, nil
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				d := diffBindings(name, cur, want)
				if d == "" {
					return journal.Change{}, nil
				}
				var err error
				switch {
				case cur == nil:
					_, err = api.Create(ctx, want, metav1.CreateOptions{})
				case cur.RoleRef != want.RoleRef:
					// A binding's role cannot change: replace it. Deleted first,
					// so the old access ends before the new one begins.
					err = api.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
					if err == nil || apierrors.IsNotFound(err) {
						_, err = api.Create(ctx, want, metav1.CreateOptions{})
					}
				default:
					next := cur.DeepCopy()
					next.Labels, next.Annotations, next.Subjects = want.Labels, want.Annotations, want.Subjects
					_, err = api.Update(ctx, next, metav1.UpdateOptions{})
				}
				if err != nil {
					return journal.Change{}, c.apiError("write", "clusterrolebinding", "", name, err)
				}
				return journal.Change{Changed: true, Diff: d}, nil
			},
		}
	})
}

// bindingName is the argument of get and delete: one name, checked.
func bindingName(k *call) (string, error) {
	var name string
	if err := k.unpack("name", &name); err != nil {
		return "", err
	}
	if err := checkObjectName(name); err != nil {
		return "", k.errorf("name: %v", err)
	}
	return name, nil
}

func bindingGet(k *call) (starlark.Value, error) {
	name, err := bindingName(k)
	if err != nil {
		return nil, err
	}
	var cur *rbacv1.ClusterRoleBinding
	_, err = k.do(func(c *cluster) journal.Op {
		return journal.Op{Kind: "binding.get", Desc: "clusterrolebinding/" + name,
			Apply: func(ctx context.Context) (journal.Change, error) {
				var err error
				if cur, err = c.getBinding(ctx, name); err == nil && cur == nil {
					return journal.Change{Note: "missing"}, nil
				}
				return journal.Change{}, err
			},
		}
	})
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return starlark.None, nil
	}
	return bindingValue(cur), nil
}

func bindingList(k *call) (starlark.Value, error) {
	var labelsV starlark.Value = starlark.None
	if err := k.unpack("labels?", &labelsV); err != nil {
		return nil, err
	}
	lbls, err := starkit.StringDict("labels", labelsV)
	if err != nil {
		return nil, k.errorf("%v", err)
	}
	sel := labels.SelectorFromSet(lbls).String()
	var list *rbacv1.ClusterRoleBindingList
	_, err = k.do(func(c *cluster) journal.Op {
		return journal.Op{Kind: "binding.list", Desc: "clusterrolebindings " + sel,
			Apply: func(ctx context.Context) (journal.Change, error) {
				var err error
				list, err = c.api.ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: sel})
				return journal.Change{}, c.apiError("list", "clusterrolebindings", "", "", err)
			},
		}
	})
	if err != nil {
		return nil, err
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	out := make([]starlark.Value, len(items))
	for i := range items {
		out[i] = bindingValue(&items[i])
	}
	return starlark.NewList(out), nil
}

func bindingDelete(k *call) (starlark.Value, error) {
	name, err := bindingName(k)
	if err != nil {
		return nil, err
	}
	var cur *rbacv1.ClusterRoleBinding
	return k.changed(func(c *cluster) journal.Op {
		return journal.Op{Kind: "binding.delete", Desc: "clusterrolebinding/" + name, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				var err error
				if cur, err = c.getBinding(ctx, name); err != nil || cur == nil {
					return journal.Change{Note: "absent"}, err
				}
				return journal.Change{Changed: true, Diff: diffBindings(name, cur, nil)}, nil
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				err := c.api.ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
				if apierrors.IsNotFound(err) {
					return journal.Change{Note: "already gone"}, nil
				}
				if err != nil {
					return journal.Change{}, c.apiError("delete", "clusterrolebinding", "", name, err)
				}
				return journal.Change{Changed: true, Diff: diffBindings(name, cur, nil)}, nil
			},
		}
	})
}

func (c *cluster) getBinding(ctx context.Context, name string) (*rbacv1.ClusterRoleBinding, error) {
	crb, err := c.api.ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.apiError("get", "clusterrolebinding", "", name, err)
	}
	return crb, nil
}

// bindingValue is a binding as Starlark sees it: struct(name, role, users, groups,
// annotations, labels, created).
func bindingValue(crb *rbacv1.ClusterRoleBinding) starlark.Value {
	var users, groups []starlark.Value
	for _, s := range crb.Subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, starlark.String(s.Name))
		case rbacv1.GroupKind:
			groups = append(groups, starlark.String(s.Name))
		}
	}
	role := ""
	if crb.RoleRef.Kind == "ClusterRole" {
		role = crb.RoleRef.Name
	}
	return starlarkstruct.FromStringDict(starlark.String("binding"), starlark.StringDict{
		"name":        starlark.String(crb.Name),
		"role":        starlark.String(role),
		"users":       starlark.NewList(users),
		"groups":      starlark.NewList(groups),
		"annotations": dataDict(crb.Annotations),
		"labels":      dataDict(crb.Labels),
	})
}

// diffBindings is a unified diff of what a binding grants and records; "" when equal.
func diffBindings(name string, cur, next *rbacv1.ClusterRoleBinding) string {
	return journal.Diff("clusterrolebinding/"+name, bindingText(cur), bindingText(next))
}

func bindingText(crb *rbacv1.ClusterRoleBinding) string {
	if crb == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "role: %s %s\n", crb.RoleRef.Kind, crb.RoleRef.Name)
	for _, s := range crb.Subjects {
		fmt.Fprintf(&b, "subject: %s %s\n", s.Kind, s.Name)
	}
	for _, k := range unionKeys(crb.Labels, nil) {
		fmt.Fprintf(&b, "label %s: %s\n", k, crb.Labels[k])
	}
	for _, k := range unionKeys(crb.Annotations, nil) {
		fmt.Fprintf(&b, "annotation %s: %q\n", k, crb.Annotations[k])
	}
	return b.String()
}

// checkObjectName checks a cluster-scoped RBAC object name as the API server does (a path
// segment), and more strictly: printable ASCII without spaces, at most 253 bytes.
func checkObjectName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 253 {
		return fmt.Errorf("%q is not an object name", name)
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || r == '/' || r == '%' {
			return fmt.Errorf("%q is not an object name (character %q)", name, r)
		}
	}
	return nil
}
