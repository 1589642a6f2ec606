package rbac

import (
	"strings"
	"testing"
)

// TestLoad: mno.yaml holds the ClusterRole and the Roles in kube-system (first), mno-history
// (the run records', the one namespace mno creates) and default; kube-system's Role has no
// list or delete on unnamed ConfigMaps;
// a Role without a namespace, with another name, or a second one in a namespace is refused
// naming its document.
func TestLoad(t *testing.T) {
	r, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, role := range r.Roles {
		ns = append(ns, role.Namespace)
	}
	if r.ClusterRole.Name != Name || strings.Join(ns, " ") != Namespace+" mno-history default" {
		t.Errorf("ClusterRole %q, Roles in %v", r.ClusterRole.Name, ns)
	}
	if got := r.Namespaces(); len(got) != 1 || got[0] != "mno-history" {
		t.Errorf("Namespaces() = %v, want [mno-history]", got)
	}
	for _, rule := range r.Roles[0].Rules {
		for _, v := range rule.Verbs {
			if contains(rule.Resources, "configmaps") && (v == "list" || v == "delete" || v == "deletecollection" || v == "*") && len(rule.ResourceNames) == 0 {
				t.Errorf("kube-system's Role has %s on every ConfigMap: %+v", v, rule)
			}
		}
	}
	cr := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: mno:controller\n"
	role := func(name, ns string) string {
		s := "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: " + name + "\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s
	}
	for _, c := range []struct{ yaml, want string }{
		{cr + "---\n" + role("mno:controller", ""), "document 2: a Role needs the name mno:controller and a namespace"},
		{cr + "---\n" + role("other", "default"), "document 2: a Role needs the name mno:controller and a namespace"},
		{cr + "---\n" + role("mno:controller", "a") + "---\n" + role("mno:controller", "a"), "document 3: a second Role in a"},
		{cr, "lacks the ClusterRole or a Role"},
	} {
		if _, err := parse([]byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
