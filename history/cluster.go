package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/builtins/kube/kclient"
)

// Where and how records are stored. Namespace is the records' own namespace: mno-history
// says what is in it (the project's prefix, as its ConfigMaps, Leases and Roles have it).
// Keeping them out of kube-system lets mno's identity list and delete there — pruning
// lists by label and deletes by name, which RBAC cannot narrow — without being able to
// read or delete the ConfigMaps of coredns, k3s or anything else in kube-system.
// `mno install systemd` and `mno install kubernetes` create it with mno's Role there; a
// record written with an admin kubeconfig creates it when it is missing.
// LegacyNamespace is where mno kept the records before: `mno history` and `mno show`
// still read them there; nothing writes or prunes them.
const (
	Namespace       = "mno-history"
	LegacyNamespace = "kube-system"
	NamePrefix      = "mno-run-"
	DataKey         = "record.json.gz"
	LabelRecord     = "mno.sh/record"
	LabelResult     = "mno.sh/result"
	LabelDrift      = "mno.sh/drift"
	NodeLabelPrefix = "node.mno.sh/"
	AnnRunID        = "mno.sh/run-id"
	AnnPlaybook     = "mno.sh/playbook"
	AnnBy           = "mno.sh/by"
	AnnStart        = "mno.sh/start"
	AnnEnd          = "mno.sh/end"
	AnnNodes        = "mno.sh/nodes"
	// DefaultKeep is how many records are kept ($MNO_HISTORY_KEEP).
	DefaultKeep = 200
	// Event reasons.
	ReasonRun   = "MnoRun"
	ReasonDrift = "MnoDrift"
)

// ConfigMapName is the name of the record of runID.
func ConfigMapName(runID string) string { return NamePrefix + strings.ToLower(runID) }

// NodeLabel is the label a record carries for an affected node: the
// node's name when it is a valid label name (every host name is), else a
// readable prefix of it and a hash.
func NodeLabel(node string) string {
	if labelName(node) {
		return NodeLabelPrefix + node
	}
	var b strings.Builder
	for _, r := range node {
		if r < 128 && (isAlnum(byte(r)) || r == '-' || r == '_' || r == '.') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-_.")
	if len(s) > 50 {
		s = s[:50]
	}
	sum := sha256.Sum256([]byte(node))
	h := hex.EncodeToString(sum[:5])
	if s == "" {
		return NodeLabelPrefix + "x" + h
	}
	return NodeLabelPrefix + strings.TrimRight(s, "-_.") + "-" + h
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func labelName(s string) bool {
	if s == "" || len(s) > 63 || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// Store reads and writes the records of one cluster.
type Store struct {
	Client *kclient.Client
	// Keep is how many records are kept; older ones are deleted, oldest
	// first, after each write (0: DefaultKeep).
	Keep int
	// MaxBytes bounds a record (0: MaxBytes).
	MaxBytes int
	Now      func() time.Time
	// Namespace holds the records written ("": Namespace).
	Namespace string
}

func (s *Store) ns() string {
	if s.Namespace != "" {
		return s.Namespace
	}
	return Namespace
}

func (s *Store) cms() kclient.Objects[*corev1.ConfigMap, *corev1.ConfigMapList] {
	return s.Client.ConfigMaps(s.ns())
}

// namespaces are where records are read: the records' namespace, then the legacy one.
func (s *Store) namespaces() []string {
	if s.ns() == LegacyNamespace {
		return []string{LegacyNamespace}
	}
	return []string{s.ns(), LegacyNamespace}
}

// installHint says how the records' namespace and mno's rights there come to be.
const installHint = "`mno install systemd` (or `mno install kubernetes`) creates it with mno's Role there"

// create creates the record cm. When the records' namespace is missing (NotFound) or the
// identity may not write there (Forbidden: no Role yet, the namespace may be missing too),
// it creates the namespace — an admin kubeconfig may — and tries again; an identity that
// may not create namespaces (mno's own) gets an error saying how to install it.
func (s *Store) create(ctx context.Context, cm *corev1.ConfigMap) error {
	_, err := s.cms().Create(ctx, cm, metav1.CreateOptions{FieldManager: "mno"})
	if err == nil || !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns(), Labels: map[string]string{"app.kubernetes.io/managed-by": "mno"}}}
	_, nerr := s.Client.Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: "mno"})
	switch {
	case nerr == nil:
		_, err = s.cms().Create(ctx, cm, metav1.CreateOptions{FieldManager: "mno"})
		return err
	case apierrors.IsAlreadyExists(nerr):
		return fmt.Errorf("%w (%s)", err, installHint)
	default:
		return fmt.Errorf("%w; creating the namespace %s: %v (%s)", err, s.ns(), nerr, installHint)
	}
}

// Write stores rec, creates the Events on the objects it affected and
// removes the records over the retention limit. The record is written
// first; an error after that (an Event, the clean-up) is returned with the
// record's name set.
func (s *Store) Write(ctx context.Context, rec *Record) (string, error) {
	max := s.MaxBytes
	if max == 0 {
		max = MaxBytes
	}
	data, err := Encode(rec, max)
	if err != nil {
		return "", err
	}
	name := ConfigMapName(rec.RunID)
	labels := map[string]string{LabelRecord: "run", LabelResult: rec.Result, LabelDrift: fmt.Sprint(len(rec.Drift) > 0)}
	var nodes []string
	for _, t := range rec.Affected() {
		if isNode(t) {
			labels[NodeLabel(t)] = rec.Targets[t]
			nodes = append(nodes, t)
		}
	}
	nodeList := strings.Join(nodes, ",")
	if len(nodeList) > 8<<10 {
		nodeList = nodeList[:8<<10] + ",…"
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns(), Labels: labels, Annotations: map[string]string{
			AnnRunID: rec.RunID, AnnPlaybook: rec.Playbook, AnnBy: rec.By,
			AnnStart: rec.Start.Format(time.RFC3339Nano), AnnEnd: rec.End.Format(time.RFC3339Nano), AnnNodes: nodeList,
		}},
		BinaryData: map[string][]byte{DataKey: data},
	}
	if err := s.create(ctx, cm); err != nil {
		return "", fmt.Errorf("creating ConfigMap %s/%s: %w", s.ns(), name, err)
	}
	errs := []error{s.events(ctx, rec)}
	errs = append(errs, s.prune(ctx))
	return name, errors.Join(errs...)
}

// isNode reports whether a target is a node (not the control plane's own
// pseudo-targets).
func isNode(t string) bool { return t != "local" && t != "cluster" }

// events creates an Event per affected Node (MnoRun, and MnoDrift when it
// drifted) and per ConfigMap the run changed.
func (s *Store) events(ctx context.Context, rec *Record) error {
	now := s.now()
	what := func(t string) string {
		msg := fmt.Sprintf("run %s (%s, by %s): %s", rec.RunID, rec.Playbook, rec.By, rec.Targets[t])
		return msg + "; `mno show " + rec.RunID + "` prints it"
	}
	var errs []error
	mk := func(ns string, obj corev1.ObjectReference, reason, typ, msg string) {
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: eventName(obj.Name, rec.RunID, reason), Namespace: ns},
			InvolvedObject: obj, Reason: reason, Message: msg, Type: typ,
			Source:         corev1.EventSource{Component: "mno"},
			FirstTimestamp: metav1.NewTime(now), LastTimestamp: metav1.NewTime(now), Count: 1,
		}
		if _, err := s.Client.Events(ns).Create(ctx, ev, metav1.CreateOptions{FieldManager: "mno"}); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("Event on %s %s: %w", obj.Kind, obj.Name, err))
		}
	}
	for _, t := range rec.Affected() {
		if !isNode(t) {
			continue
		}
		node := corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: t}
		mk(metav1.NamespaceDefault, node, ReasonRun, typeOf(rec.Targets[t]), what(t))
		if files := rec.Drift[t]; files != nil {
			mk(metav1.NamespaceDefault, node, ReasonDrift, corev1.EventTypeWarning,
				fmt.Sprintf("run %s found %s changed on %s since its last sync (the cluster's state had not changed); `mno show %s`",
					rec.RunID, strings.Join(files, ", "), t, rec.RunID))
		}
	}
	for _, ref := range changedConfigMaps(rec) {
		ns, name, _ := strings.Cut(ref, "/")
		mk(ns, corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name}, ReasonRun, corev1.EventTypeNormal,
			fmt.Sprintf("run %s (%s, by %s) changed this ConfigMap; `mno show %s` prints it", rec.RunID, rec.Playbook, rec.By, rec.RunID))
	}
	return errors.Join(errs...)
}

func typeOf(result string) string {
	if result == ResultOK || result == "changed" {
		return corev1.EventTypeNormal
	}
	return corev1.EventTypeWarning
}

// changedConfigMaps returns "namespace/name" of each ConfigMap the run
// changed (its configmap.* effects of target cluster).
func changedConfigMaps(rec *Record) []string {
	desc := map[int]string{}
	seen := map[string]bool{}
	var out []string
	for _, e := range rec.Events {
		if e.Target != "cluster" || !strings.HasPrefix(e.Kind, "configmap.") {
			continue
		}
		switch e.Type {
		case "effect_start":
			desc[e.ID] = e.Desc
		case "effect_end":
			if e.Changed == nil || !*e.Changed || e.Simulated {
				continue
			}
			// "ns/name", "ns/name[key]" (update_json) or "ns/name key".
			ref, _, _ := strings.Cut(desc[e.ID], " ")
			ref, _, _ = strings.Cut(ref, "[")
			if strings.Count(ref, "/") == 1 && !seen[ref] {
				seen[ref] = true
				out = append(out, ref)
			}
		}
	}
	sort.Strings(out)
	return out
}

// eventName is a valid, unique Event name for an object and run.
func eventName(obj, runID, reason string) string {
	n := strings.ToLower(obj)
	if !labelName(n) || len(n) > 63 {
		sum := sha256.Sum256([]byte(obj))
		n = "x" + hex.EncodeToString(sum[:8])
	}
	return n + "." + strings.ToLower(runID) + "." + strings.ToLower(reason)
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Summary is a record as `mno history` lists it (its metadata only).
type Summary struct {
	Name string
	// Namespace is where the record is: Namespace, or LegacyNamespace for one an earlier
	// mno wrote.
	Namespace string
	RunID     string
	Playbook  string
	By        string
	Start     time.Time
	End       time.Time
	Result    string
	Drift     bool
	// Nodes maps each affected node (its label name) to its result.
	Nodes map[string]string
	// NodeList are the affected nodes as the run named them.
	NodeList string
}

// List returns the records, oldest first: those affecting node when it is
// set, and those started at or after since when it is not zero. It reads the
// records' namespace and LegacyNamespace, where an earlier mno kept them (an
// identity that may not list ConfigMaps there — mno's own — reads only the first).
func (s *Store) List(ctx context.Context, node string, since time.Time) ([]Summary, error) {
	var out []Summary
	for _, ns := range s.namespaces() {
		l, err := s.list(ctx, ns, node)
		if err != nil && ns != s.ns() && apierrors.IsForbidden(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, sum := range l {
			if since.IsZero() || !sum.Start.Before(since) {
				out = append(out, sum)
			}
		}
	}
	sortSummaries(out)
	return out, nil
}

// list returns the records in namespace ns (affecting node when it is set).
func (s *Store) list(ctx context.Context, ns, node string) ([]Summary, error) {
	sel := LabelRecord + "=run"
	if node != "" {
		sel += "," + NodeLabel(node)
	}
	l, err := s.Client.ConfigMaps(ns).ListMeta(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing the run records (ConfigMaps %s in %s): %w", sel, ns, err)
	}
	var out []Summary
	for _, m := range l.Items {
		sum := summaryOf(m.ObjectMeta)
		sum.Namespace = ns
		out = append(out, sum)
	}
	return out, nil
}

func sortSummaries(out []Summary) {
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].Name < out[j].Name
	})
}

func summaryOf(m metav1.ObjectMeta) Summary {
	a := m.Annotations
	s := Summary{Name: m.Name, RunID: a[AnnRunID], Playbook: a[AnnPlaybook], By: a[AnnBy], Result: m.Labels[LabelResult],
		Drift: m.Labels[LabelDrift] == "true", Nodes: map[string]string{}, NodeList: a[AnnNodes]}
	if s.RunID == "" {
		s.RunID = strings.TrimPrefix(m.Name, NamePrefix)
	}
	s.Start, _ = time.Parse(time.RFC3339Nano, a[AnnStart])
	s.End, _ = time.Parse(time.RFC3339Nano, a[AnnEnd])
	for k, v := range m.Labels {
		if n, ok := strings.CutPrefix(k, NodeLabelPrefix); ok {
			s.Nodes[n] = v
		}
	}
	return s
}

// ErrNoRecord is returned by Get for a run without a record.
var ErrNoRecord = errors.New("no record")

// Get reads the record of runID (as printed, in any case; the ConfigMap's
// name works too), in the records' namespace or else in LegacyNamespace.
func (s *Store) Get(ctx context.Context, runID string) (*Record, error) {
	id := strings.TrimPrefix(strings.ToLower(runID), NamePrefix)
	if !validRunID(id) {
		return nil, fmt.Errorf("%q is not a run id (like 20260102T150405-0a1b2c; `mno history` lists them)", runID)
	}
	name := ConfigMapName(id)
	var where []string
	for _, ns := range s.namespaces() {
		cm, err := s.Client.ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err != nil && ns != s.ns() && apierrors.IsForbidden(err) {
			where = append(where, ns+"/"+name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", ns, name, err)
		}
		data, ok := cm.BinaryData[DataKey]
		if !ok || cm.Labels[LabelRecord] != "run" {
			return nil, fmt.Errorf("ConfigMap %s/%s is not a run record (no %s)", ns, name, DataKey)
		}
		rec, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", ns, name, err)
		}
		return rec, nil
	}
	return nil, fmt.Errorf("run %s: %w (no ConfigMap %s; `mno history` lists the recorded runs)", runID, ErrNoRecord, strings.Join(where, " nor "))
}

// prune deletes the oldest records beyond Keep, in the records' namespace only.
func (s *Store) prune(ctx context.Context) error {
	keep := s.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	all, err := s.list(ctx, s.ns(), "")
	if err != nil {
		return err
	}
	sortSummaries(all)
	var errs []error
	for i := 0; i < len(all)-keep; i++ {
		err := s.cms().Delete(ctx, all[i].Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the old record %s/%s: %w", s.ns(), all[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

// validRunID reports whether id (lower case) can be a run id: letters,
// digits and '-', at most 63.
func validRunID(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
