package kclient_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

func TestMain(m *testing.M) { kubeapitest.Main(m) }

// TestConfigMaps: create, get, update guarded by resourceVersion, delete
// guarded by UID, against a real API server; every failure is the apierrors
// kind callers test for (the Status the server sent, not a generic error).
func TestConfigMaps(t *testing.T) {
	srv := kubeapitest.Server(t)
	ns := kubeapitest.Namespace(t, srv)
	c := kubeapitest.KClient(t, srv)
	ctx := context.Background()
	cms := c.ConfigMaps(ns)

	if _, err := cms.Get(ctx, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get of a missing ConfigMap: %v, want NotFound", err)
	}
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "ünï\n\"quoted\""}},
		metav1.CreateOptions{FieldManager: "mno"})
	if err != nil {
		t.Fatal(err)
	}
	if cm.UID == "" || cm.ResourceVersion == "" || cm.Namespace != ns {
		t.Errorf("create returned %+v, want the stored object", cm.ObjectMeta)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	got, err := cms.Get(ctx, "cm", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "ünï\n\"quoted\"" {
		t.Fatalf("get: %v %q", err, got.Data)
	}
	got.Data["k"] = "v2"
	updated, err := cms.Update(ctx, got, metav1.UpdateOptions{FieldManager: "mno"})
	if err != nil || updated.ResourceVersion == cm.ResourceVersion {
		t.Fatalf("update: %v (resourceVersion %s → %s)", err, cm.ResourceVersion, updated.ResourceVersion)
	}
	cm.Data = map[string]string{"k": "stale"}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update from a stale read: %v, want Conflict", err)
	}
	wrongUID := types.UID("00000000-0000-0000-0000-000000000000")
	if err := cms.Delete(ctx, "cm", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrongUID}}); !apierrors.IsConflict(err) {
		t.Errorf("delete with another UID: %v, want Conflict", err)
	}
	if err := cms.Delete(ctx, "cm", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "cm", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second delete: %v, want NotFound", err)
	}
	if _, err := c.ConfigMaps("no-such-namespace-x").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("create in a missing namespace: %v, want NotFound", err)
	}
}

// TestListAndWatch: a field-selected list, and a watch whose events carry
// typed objects — what `mno watch`'s informers are built on.
func TestListAndWatch(t *testing.T) {
	srv := kubeapitest.Server(t)
	ns := kubeapitest.Namespace(t, srv)
	c := kubeapitest.KClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cms := c.ConfigMaps(ns)
	for _, n := range []string{"a", "b"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sel := fields.OneTermEqualSelector("metadata.name", "b").String()
	list, err := cms.List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "b" || list.ResourceVersion == "" {
		t.Fatalf("list: %d items %v, resourceVersion %q", len(list.Items), list.Items, list.ResourceVersion)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	b := list.Items[0]
	b.Data = map[string]string{"x": "1"}
	if _, err := cms.Update(ctx, &b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil { // not selected: no event
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case ev := <-w.ResultChan():
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				t.Fatalf("event %s carries %T, want *corev1.ConfigMap", ev.Type, ev.Object)
			}
			got = append(got, string(ev.Type)+" "+cm.Name+" "+cm.Data["x"])
		case <-ctx.Done():
			t.Fatalf("watch: only %v", got)
		}
	}
	if want := []string{string(watch.Modified) + " b 1", string(watch.Deleted) + " b 1"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestClusterScopedAndSubresources: Nodes (cluster-scoped) with a status
// update and a merge patch; Leases in their API group.
func TestClusterScopedAndSubresources(t *testing.T) {
	srv := kubeapitest.Server(t)
	ns := kubeapitest.Namespace(t, srv)
	c := kubeapitest.KClient(t, srv)
	ctx := context.Background()
	name := ns + "-node"
	n, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "Test"}}
	if _, err := c.Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := c.Nodes().Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"labels":{"zone":"attic"}}}`), metav1.PatchOptions{FieldManager: "mno"})
	if err != nil {
		t.Fatal(err)
	}
	// A Node's main resource ignores status: the condition is there only if
	// UpdateStatus went to /status.
	if p.Labels["zone"] != "attic" || len(p.Status.Conditions) != 1 || p.Status.Conditions[0].Reason != "Test" {
		t.Errorf("node after status update and patch: labels %v, conditions %v", p.Labels, p.Status.Conditions)
	}
	nodes, err := c.Nodes().List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("list nodes: %v %v", err, nodes)
	}
	holder := "me"
	l, err := c.Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}, metav1.CreateOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "me" {
		t.Fatalf("lease: %v %+v", err, l)
	}
	if _, err := kclient.For(c, kclient.Leases, ns).Get(ctx, "l", metav1.GetOptions{}); err != nil {
		t.Errorf("For(Leases).Get: %v", err)
	}
}

// TestNoClientset: mno's binary links client-go's REST client but not its
// generated clientset, informer factories or leader election, whose package
// init registered every API group in a global scheme on each start.
func TestNoClientset(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/mno-sh/mno/cmd/mno").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps printed %d packages: %s", len(deps), out)
	}
	for _, d := range deps {
		for _, banned := range []string{"k8s.io/client-go/kubernetes", "k8s.io/client-go/informers", "k8s.io/client-go/tools/leaderelection", "k8s.io/client-go/listers"} {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("mno links %s", d)
			}
		}
	}
}

// TestListMetaForbidden: a metadata-only list that RBAC refuses fails with the server's
// Status — Forbidden, naming the user, verb, resource and namespace — not client-go's
// "unknown (get configmaps)" for a body it could not read as the list.
func TestListMetaForbidden(t *testing.T) {
	srv := kubeapitest.Server(t)
	ns := kubeapitest.Namespace(t, srv)
	kc, err := srv.UserKubeconfig("nobody-listmeta")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kclient.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ConfigMaps(ns).ListMeta(context.Background(), metav1.ListOptions{LabelSelector: "a=b"})
	want := `User "nobody-listmeta" cannot list resource "configmaps" in API group "" in the namespace "` + ns + `"`
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("ListMeta as a user without rights: %v, want Forbidden with %q", err, want)
	}
	// Allowed: the metadata of the objects, without their data.
	if _, err := kubeapitest.KClient(t, srv).ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "m", Labels: map[string]string{"a": "b"}}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := kubeapitest.KClient(t, srv).ConfigMaps(ns).ListMeta(context.Background(), metav1.ListOptions{LabelSelector: "a=b"})
	if err != nil || len(l.Items) != 1 || l.Items[0].Name != "m" {
		t.Fatalf("ListMeta as admin: %v %+v", err, l)
	}
}
