package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// These tests use client-go's fake clientset to script conflicts exactly;
// the behaviour against a real API server is in the script and process tests.

var cmResource = schema.GroupResource{Resource: "configmaps"}

func fakeCluster(objs ...runtime.Object) (*cluster, *fake.Clientset) {
	cs := fake.NewClientset(objs...)
	c := &cluster{server: "https://fake", source: "test"}
	c.configMaps = func(ns string) configMapAPI { return cs.CoreV1().ConfigMaps(ns) }
	return c, cs
}

func noSleep(context.Context, int) error { return nil }

// increment is the mutation of a counter key, counting its calls.
func increment(calls *int) mutation {
	return func(cur *corev1.ConfigMap) (*corev1.ConfigMap, error) {
		*calls++
		n := 0
		if cur != nil {
			for _, c := range cur.Data["n"] {
				n = n*10 + int(c-'0')
			}
		}
		data := copyMap(dataOf(cur))
		data["n"] = itoa(n + 1)
		return withData(cur, "ns", "cm", data), nil
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestRMWRetriesConflicts(t *testing.T) {
	tests := []struct {
		name      string
		conflicts int
		wantErr   string
	}{
		{"no conflict", 0, ""},
		{"three conflicts", 3, ""},
		{"19 conflicts", maxAttempts - 1, ""},
		{"gives up", maxAttempts, "gave up after 20 conflicting writes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cs := fakeCluster(&corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns", ResourceVersion: "1"},
				Data:       map[string]string{"n": "5", "other": "kept"},
			})
			left := tt.conflicts
			cs.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if left > 0 {
					left--
					return true, nil, apierrors.NewConflict(cmResource, "cm", nil)
				}
				return false, nil, nil
			})
			calls := 0
			w := newRMW(c, "ns", "cm", increment(&calls))
			w.sleep = noSleep
			ctx := context.Background()
			if err := w.plan(ctx); err != nil {
				t.Fatal(err)
			}
			err := w.commit(ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// fn runs once per attempt, on fresh data each time.
			if calls != tt.conflicts+1 {
				t.Errorf("mutation called %d times, want %d", calls, tt.conflicts+1)
			}
			if w.conflicts != tt.conflicts {
				t.Errorf("conflicts = %d, want %d", w.conflicts, tt.conflicts)
			}
			got, _ := cs.CoreV1().ConfigMaps("ns").Get(ctx, "cm", metav1.GetOptions{})
			if got.Data["n"] != "6" || got.Data["other"] != "kept" {
				t.Errorf("data = %v, want n=6 other=kept", got.Data)
			}
		})
	}
}

// A create that loses the race to another creator becomes an update of
// what the other wrote.
func TestRMWCreateRace(t *testing.T) {
	c, cs := fakeCluster()
	raced := false
	cs.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		// Someone else creates it between our read and our create.
		other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"n": "41"}}
		if err := cs.Tracker().Create(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, other, "ns"); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(cmResource, "cm")
	})
	calls := 0
	w := newRMW(c, "ns", "cm", increment(&calls))
	w.sleep = noSleep
	ctx := context.Background()
	if err := w.plan(ctx); err != nil {
		t.Fatal(err)
	}
	if w.cur != nil {
		t.Fatal("plan saw a ConfigMap before it existed")
	}
	if err := w.commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := cs.CoreV1().ConfigMaps("ns").Get(ctx, "cm", metav1.GetOptions{})
	if got.Data["n"] != "42" || calls != 2 || w.conflicts != 1 {
		t.Errorf("n = %s after %d calls and %d conflicts, want 42 after 2 and 1", got.Data["n"], calls, w.conflicts)
	}
}

// After a conflict the new plan may find nothing left to do (another run
// made the same change): no write, not changed.
func TestRMWConflictThenNothingToDo(t *testing.T) {
	c, cs := fakeCluster(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"k": "old"}})
	cs.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cm := a.(k8stesting.UpdateAction).GetObject().(*corev1.ConfigMap)
		if cm.Data["k"] == "new" && cm.Annotations["by"] != "other" {
			other := cm.DeepCopy()
			other.Annotations = map[string]string{"by": "other"}
			cs.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, other, "ns")
			return true, nil, apierrors.NewConflict(cmResource, "cm", nil)
		}
		return false, nil, nil
	})
	set := func(cur *corev1.ConfigMap) (*corev1.ConfigMap, error) {
		if cur.Data["k"] == "new" {
			return nil, nil
		}
		return withData(cur, "ns", "cm", map[string]string{"k": "new"}), nil
	}
	w := newRMW(c, "ns", "cm", set)
	w.sleep = noSleep
	ctx := context.Background()
	if err := w.plan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.commit(ctx); err != nil {
		t.Fatal(err)
	}
	if ch := w.change(); ch.Changed || ch.Note != "1 conflicts retried" {
		t.Errorf("change = %+v, want unchanged with 1 conflict", ch)
	}
}

func TestSizeLimit(t *testing.T) {
	c, cs := fakeCluster()
	big := strings.Repeat("x", MaxConfigMapBytes)
	w := newRMW(c, "kube-system", "cm", func(cur *corev1.ConfigMap) (*corev1.ConfigMap, error) {
		return withData(cur, "kube-system", "cm", map[string]string{"k": big}), nil
	})
	err := w.plan(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ConfigMap kube-system/cm would hold 1.0 MiB (1048577 bytes), over the 1 MiB ConfigMap limit") {
		t.Fatalf("err = %v", err)
	}
	if n := len(cs.Actions()); n != 1 {
		t.Errorf("%d API calls, want only the read", n)
	}
}

func TestDiffConfigMaps(t *testing.T) {
	cur := &corev1.ConfigMap{Data: map[string]string{
		"same":  "x",
		"gone":  "bye\n",
		"flat":  `{ "a": 1,  "b": [1, 2] }`,
		"json":  `{"a": 1}`,
		"plain": "1\n2\n3\n",
	}, ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"keep": "1", "old": "x"}}}
	next := &corev1.ConfigMap{Data: map[string]string{
		"same":  "x",
		"flat":  "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}\n",
		"json":  `{"a": 2}`,
		"plain": "1\n2\n4\n",
		"new":   "hi\n",
	}, ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"keep": "1", "old": "y"}}}
	want := `--- ns/cm[flat]
+++ ns/cm[flat]
reformatted (24 bytes → 40 bytes), same JSON document
--- ns/cm[gone]
+++ ns/cm[gone]
@@ -1 +0,0 @@
-bye
--- ns/cm[json]
+++ ns/cm[json]
@@ -1,3 +1,3 @@
 {
-  "a": 1
+  "a": 2
 }
--- ns/cm[new]
+++ ns/cm[new]
@@ -0,0 +1 @@
+hi
--- ns/cm[plain]
+++ ns/cm[plain]
@@ -1,3 +1,3 @@
 1
 2
-3
+4
--- ns/cm labels
+++ ns/cm labels
@@ -1 +1 @@
-old=x
+old=y
`
	if got := diffConfigMaps("ns/cm", cur, next); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}
