package kube

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/engine/journal"
)

// MaxConfigMapBytes is the API server's limit on a ConfigMap's data and
// binaryData together (keys and values).
const MaxConfigMapBytes = 1 << 20

// maxAttempts bounds the read-modify-write loop; 20 conflicts in a row means
// something rewrites the ConfigMap in a tight loop.
const maxAttempts = 20

// mutation computes the desired ConfigMap from the current one (nil when it
// does not exist), or returns nil when nothing must change. It must not
// modify cur, and it may be called again after a conflict.
type mutation func(cur *corev1.ConfigMap) (*corev1.ConfigMap, error)

// rmw is one guarded read-modify-write of a ConfigMap.
type rmw struct {
	c      *cluster
	cms    configMapAPI
	ns     string
	name   string
	mutate mutation
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, attempt int) error

	cur, next *corev1.ConfigMap // the last plan
	conflicts int
}

func newRMW(c *cluster, ns, name string, mutate mutation) *rmw {
	return &rmw{c: c, cms: c.configMaps(ns), ns: ns, name: name, mutate: mutate, sleep: backoff}
}

// plan reads the ConfigMap and computes the change, writing nothing.
func (w *rmw) plan(ctx context.Context) error {
	cur, err := getConfigMap(ctx, w.c, w.cms, w.ns, w.name)
	if err != nil {
		return err
	}
	next, err := w.mutate(cur)
	if err != nil {
		return err
	}
	if next != nil {
		if n := configMapSize(next); n > MaxConfigMapBytes {
			return fmt.Errorf("ConfigMap %s/%s would hold %s (%d bytes), over the 1 MiB ConfigMap limit; nothing was written",
				w.ns, w.name, humanBytes(n), n)
		}
	}
	w.cur, w.next = cur, next
	return nil
}

// commit writes the planned change with the resourceVersion it read. On a
// conflict (or a create that lost a race) it reads again, re-plans and
// retries, up to maxAttempts.
func (w *rmw) commit(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		if w.next == nil {
			return nil
		}
		var err error
		verb := "update"
		if w.cur == nil {
			verb = "create"
			_, err = w.cms.Create(ctx, w.next, metav1.CreateOptions{FieldManager: fieldManager})
		} else {
			_, err = w.cms.Update(ctx, w.next, metav1.UpdateOptions{FieldManager: fieldManager})
		}
		if err == nil {
			return nil
		}
		retry := apierrors.IsConflict(err) || (w.cur == nil && apierrors.IsAlreadyExists(err))
		if !retry {
			return w.c.apiError(verb, "configmap", w.ns, w.name, err)
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("ConfigMap %s/%s: gave up after %d conflicting writes (something else keeps changing it)", w.ns, w.name, attempt)
		}
		w.conflicts++
		if err := w.sleep(ctx, attempt); err != nil {
			return err
		}
		if err := w.plan(ctx); err != nil {
			return err
		}
	}
}

// change describes the last plan for the journal.
func (w *rmw) change() journal.Change {
	ch := journal.Change{Changed: w.next != nil, Pre: "absent"}
	if w.cur != nil {
		ch.Pre = "resourceVersion:" + w.cur.ResourceVersion
	}
	if w.next != nil {
		ch.Diff = diffConfigMaps(w.ns+"/"+w.name, w.cur, w.next)
		if w.cur == nil {
			ch.Note = "new ConfigMap"
		}
	}
	if w.conflicts > 0 {
		if ch.Note != "" {
			ch.Note += ", "
		}
		ch.Note += fmt.Sprintf("%d conflicts retried", w.conflicts)
	}
	return ch
}

// fieldManager names mno in managedFields.
const fieldManager = "mno"

// backoff sleeps a jittered, growing delay: a few ms first, 500 ms at most.
func backoff(ctx context.Context, attempt int) error {
	d := 5 * time.Millisecond << min(attempt-1, 7)
	d = min(d, 500*time.Millisecond)
	d = d/2 + rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func getConfigMap(ctx context.Context, c *cluster, cms configMapAPI, ns, name string) (*corev1.ConfigMap, error) {
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.apiError("get", "configmap", ns, name, err)
	}
	return cm, nil
}

// withData returns cur (or a new ConfigMap when cur is nil) with data
// replaced, everything else kept.
func withData(cur *corev1.ConfigMap, ns, name string, data map[string]string) *corev1.ConfigMap {
	var next *corev1.ConfigMap
	if cur == nil {
		next = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	} else {
		next = cur.DeepCopy()
	}
	next.Data = data
	return next
}

func configMapSize(cm *corev1.ConfigMap) int {
	n := 0
	for k, v := range cm.Data {
		n += len(k) + len(v)
	}
	for k, v := range cm.BinaryData {
		n += len(k) + len(v)
	}
	return n
}

func humanBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// diffConfigMaps is a unified diff per changed key, labelled
// "ns/name[key]", JSON documents pretty-printed first; label changes come
// last as "ns/name labels".
func diffConfigMaps(ref string, cur, next *corev1.ConfigMap) string {
	var old, new map[string]string
	var oldLabels, newLabels map[string]string
	if cur != nil {
		old, oldLabels = cur.Data, cur.Labels
	}
	if next != nil {
		new, newLabels = next.Data, next.Labels
	}
	var b strings.Builder
	for _, k := range unionKeys(old, new) {
		o, inOld := old[k]
		n, inNew := new[k]
		if inOld == inNew && o == n {
			continue
		}
		d := journal.Diff(ref+"["+k+"]", prettyForDiff(o), prettyForDiff(n))
		if d == "" {
			// Same document, other formatting (a MyNodeOne value rewritten).
			d = fmt.Sprintf("--- %s[%s]\n+++ %s[%s]\nreformatted (%d bytes → %d bytes), same JSON document\n", ref, k, ref, k, len(o), len(n))
		}
		b.WriteString(d)
	}
	if next != nil {
		b.WriteString(journal.Diff(ref+" labels", labelLines(oldLabels, newLabels, oldLabels), labelLines(oldLabels, newLabels, newLabels)))
	}
	return b.String()
}

// labelLines renders the labels of m that differ between a and b as
// key=value lines, for a diff of label changes only.
func labelLines(a, b, m map[string]string) string {
	var s strings.Builder
	for _, k := range unionKeys(a, b) {
		av, aok := a[k]
		bv, bok := b[k]
		if aok == bok && av == bv {
			continue
		}
		if v, ok := m[k]; ok {
			s.WriteString(k + "=" + v + "\n")
		}
	}
	return s.String()
}

func unionKeys(a, b map[string]string) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
