package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno/deploy/rbac"
	"github.com/mno-sh/mno/history"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

// ruleRef names one rule of mno's roles for messages: "ClusterRole[3] nodes delete",
// "Role/default[0] events create".
type ruleRef struct {
	role  string // "ClusterRole" or "Role"
	ns    string // the Role's namespace
	index int
	rule  rbacv1.PolicyRule
}

func (r ruleRef) String() string {
	role := r.role
	if r.ns != "" {
		role += "/" + r.ns
	}
	return fmt.Sprintf("%s[%d] %s %s", role, r.index, strings.Join(r.rule.Resources, ","), strings.Join(r.rule.Verbs, ","))
}

// forbiddenText is what the API server's 403 for the rule says: "cannot VERB resource
// \"RES\"" (in a Role's namespace: "… in API group \"G\" in the namespace \"NS\""), or, for
// `bind` on roles, the escalation check's refusal.
func (r ruleRef) forbiddenText() []string {
	if contains(r.rule.Verbs, "bind") {
		return []string{"attempting to grant RBAC permissions not currently held"}
	}
	var out []string
	for _, v := range r.rule.Verbs {
		for _, res := range r.rule.Resources {
			t := fmt.Sprintf("cannot %s resource %q", v, res)
			if r.ns != "" {
				t += fmt.Sprintf(" in API group %q in the namespace %q", r.rule.APIGroups[0], r.ns)
			}
			out = append(out, t)
		}
	}
	return out
}

func allRules(roles rbac.Roles) []ruleRef {
	var out []ruleRef
	for i, r := range roles.ClusterRole.Rules {
		out = append(out, ruleRef{"ClusterRole", "", i, r})
	}
	for _, role := range roles.Roles {
		for i, r := range role.Rules {
			out = append(out, ruleRef{"Role", role.Namespace, i, r})
		}
	}
	return out
}

// without returns the roles with one rule removed.
func without(roles rbac.Roles, r ruleRef) rbac.Roles {
	out := rbac.Roles{ClusterRole: roles.ClusterRole.DeepCopy()}
	for _, role := range roles.Roles {
		role = role.DeepCopy()
		if r.role == "Role" && role.Namespace == r.ns {
			role.Rules = append(role.Rules[:r.index:r.index], role.Rules[r.index+1:]...)
		}
		out.Roles = append(out.Roles, role)
	}
	if r.role == "ClusterRole" {
		out.ClusterRole.Rules = append(out.ClusterRole.Rules[:r.index:r.index], out.ClusterRole.Rules[r.index+1:]...)
	}
	return out
}

// deleteBindings removes what rbac.Apply bound (the roles stay, for the next test to replace).
func (e *env) deleteBindings(roles rbac.Roles) {
	e.client.RbacV1().ClusterRoleBindings().Delete(e.ctx, rbac.Name, metav1.DeleteOptions{})
	for _, r := range roles.Roles {
		e.client.RbacV1().RoleBindings(r.Namespace).Delete(e.ctx, rbac.Name, metav1.DeleteOptions{})
	}
}

// applyRoles applies roles bound to subject and waits until the API server's authorizer
// grants exactly what they say for every rule of full (its cache follows the writes).
func (e *env) applyRoles(roles, full rbac.Roles, subject rbacv1.Subject, user string) {
	e.t.Helper()
	if _, err := rbac.Apply(e.ctx, kubeapitest.KClient(e.t, kubeapitest.Server(e.t)), roles, subject); err != nil {
		e.t.Fatal(err)
	}
	present := map[string]bool{}
	for _, r := range allRules(roles) {
		b, _ := json.Marshal(r.rule)
		present[r.role+r.ns+string(b)] = true
	}
	eventually(e.t, "RBAC reflects the roles", func() error {
		for _, r := range allRules(full) {
			b, _ := json.Marshal(r.rule)
			want := present[r.role+r.ns+string(b)]
			res, sub, _ := strings.Cut(r.rule.Resources[0], "/")
			attr := &authorizationv1.ResourceAttributes{Verb: r.rule.Verbs[0], Group: r.rule.APIGroups[0], Resource: res, Subresource: sub, Namespace: r.ns}
			if len(r.rule.ResourceNames) > 0 {
				attr.Name = r.rule.ResourceNames[0]
			}
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: attr}}
			if subject.Kind == rbacv1.ServiceAccountKind {
				sar.Spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + subject.Namespace, "system:authenticated"}
			}
			got, err := e.client.AuthorizationV1().SubjectAccessReviews().Create(e.ctx, sar, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if got.Status.Allowed != want {
				return fmt.Errorf("%s: allowed=%v, want %v", r, got.Status.Allowed, want)
			}
		}
		return nil
	})
}

// refused reports whether a run's or watcher's output shows a refusal: a 403, or a run
// record (its Events, the pruning) that could not be written — only a warning, the run's
// result unchanged.
func refused(out string) bool {
	return strings.Contains(out, "forbidden") || recordWarning.MatchString(out)
}

var recordWarning = regexp.MustCompile(`warning: run \S+ (not recorded in the cluster|recorded in ConfigMap \S+, but)`)

// scenarioLeases are the Leases mno takes: mno watch's leader elections and publish's lock.
var scenarioLeases = []string{"mno-watch-sync", "mno-watch-discover", "mno-routes"}

// mnoScenario is everything mno does as its own identity, in order, as `mno run` and `mno
// watch` do it (runs recorded in the cluster, keeping one record so that each run prunes the
// one before): init, add-laptop, discover (a LoadBalancer Service), publish, unpublish
// (taking over the mno-routes Lease a crashed run left behind), sync, remove-node of a
// worker (drain: cordon, evict a pod, delete the Node) and of the laptop, then `mno watch
// sync` (its informers listing then watching, as client-go does against an API server without
// WatchList) reacting to a ConfigMap change and `mno watch discover --on-services` reacting to a
// new Service. It stops at the first step that fails or prints a refusal (a 403, a record
// not written) and returns that step and its output; "" when all succeed.
func (e *env) mnoScenario(t *testing.T, kubeconfig string) (out, step string) {
	t.Helper()
	l, w := e.host("laptop-1"), e.host("worker-1")
	// The cluster as an admin leaves it: no mno state, records or Leases, a worker's Node
	// with a pod on it, a LoadBalancer Service.
	e.resetCluster()
	e.clearRecords()
	for _, name := range scenarioLeases {
		e.client.CoordinationV1().Leases(rbac.Namespace).Delete(e.ctx, name, metav1.DeleteOptions{})
	}
	if _, err := e.client.CoreV1().ServiceAccounts("default").Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	zero := int64(0)
	e.client.CoreV1().Pods("default").DeleteCollection(e.ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	if _, err := e.client.CoreV1().Nodes().Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-"}, Spec: corev1.PodSpec{NodeName: "worker-1",
		Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}}}
	if _, err := e.client.CoreV1().Pods("default").Create(e.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const appNS = "rbac-apps"
	createService := e.serviceMaker(appNS)
	if svcs, err := e.client.CoreV1().Services(appNS).List(e.ctx, metav1.ListOptions{}); err == nil {
		for _, s := range svcs.Items {
			e.client.CoreV1().Services(appNS).Delete(e.ctx, s.Name, metav1.DeleteOptions{})
		}
	}
	createService(appNS, "wiki", corev1.ServiceTypeLoadBalancer, 80, "10.213.79.6", nil)

	getenv := func(k string) string {
		switch k {
		case "MNO_K3S_TLS_DIR":
			return e.tlsDir
		case "MNO_HISTORY_KEEP":
			return "1"
		}
		return ""
	}
	run := func(name string, params ...string) bool {
		r := e.runRecordedIn("", kubeconfig, history.Options{}, getenv, name, params...)
		if r.exit != 0 || refused(r.stderr) {
			out, step = r.stderr, name+" "+strings.Join(params, " ")
			return false
		}
		return true
	}
	if !run("init", "cluster_name=home", "cluster_domain=home", "control_plane_ip=10.0.0.1") {
		return
	}
	// The worker, registered as add-worker leaves it (add-worker itself needs a kubelet).
	reg := e.registry()
	reg["worker_nodes"] = []any{map[string]any{"name": "worker-1", "ip": w.Addr, "ssh_user": "root", "ssh_port": 22, "host_key": w.HostKey, "status": "active"}}
	b, _ := json.Marshal(reg)
	e.setConfigMap("sync-controller-registry", map[string]string{"registry.json": string(b)})
	if !run("add-laptop", "name=laptop-1", "address="+l.Addr, "user=mno", "host_key="+l.HostKey) ||
		!run("discover") ||
		!run("publish", "service=wiki") {
		return
	}
	// A publish that crashed holding the lock: its Lease expired long ago.
	holder, secs := "cp-0/20260101T000000-0dead0", int32(120)
	past := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	if _, err := e.client.CoordinationV1().Leases(rbac.Namespace).Create(e.ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "mno-routes"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &past, RenewTime: &past}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !run("unpublish", "service=wiki") ||
		!run("sync") ||
		!run("remove-node", "name=worker-1") ||
		!run("remove-node", "name=laptop-1") {
		return
	}
	// Each run pruned the record before it: the last run's record is the only one.
	if recs := e.records(); len(recs) != 1 || !strings.HasSuffix(recs[0].Annotations[history.AnnPlaybook], "/remove-node.star") {
		var names []string
		for _, r := range recs {
			names = append(names, r.Name+" ("+r.Annotations[history.AnnPlaybook]+")")
		}
		return fmt.Sprintf("records %v, want only remove-node's", names), "the run records"
	}

	// watch runs `mno watch ARGS` as mno until it has run once, then trigger()s a change and
	// waits until reacted(w) or a refusal.
	watch := func(trigger func(), reacted func(*watcher) bool, args ...string) bool {
		admin := e.kubeconfig
		e.kubeconfig = kubeconfig
		wt := e.startWatcher(t, args...)
		e.kubeconfig = admin
		defer func() { wt.cmd.Process.Kill(); wt.cmd.Wait() }()
		what := "mno watch " + strings.Join(args, " ")
		// wait polls cond until it holds or the watcher is refused; false (and the log as
		// the step's output) when neither happens within a minute.
		wait := func(cond func() bool) bool {
			for start := time.Now(); !cond() && !refused(wt.logText()); time.Sleep(20 * time.Millisecond) {
				if time.Since(start) > time.Minute {
					out, step = wt.logText(), what+" (neither done nor refused within a minute)"
					return false
				}
			}
			return true
		}
		if !wait(func() bool { return wt.metric("mno_watch_runs_total") >= 1 }) {
			return false
		}
		if !refused(wt.logText()) {
			trigger()
			if !wait(func() bool { return reacted(wt) }) {
				return false
			}
		}
		if log := wt.logText(); refused(log) {
			out, step = log, what
			return false
		}
		return true
	}
	// mno watch sync as against an API server without WatchList (older k3s): its informers
	// list the four ConfigMaps by name before they watch them.
	e.watchEnv = []string{"KUBE_FEATURE_WatchListClient=false"}
	defer func() { e.watchEnv = nil }()
	if !watch(func() {
		// An entry added by hand (the rest kept: discover's start run then changes nothing).
		svcs := e.jsonKey("service-registry", "services.json")
		svcs["extra"] = map[string]any{"subdomain": "extra", "ip": "100.1.1.9", "port": 80, "public": false}
		e.setServices(svcs)
	}, func(wt *watcher) bool {
		return wt.metric("mno_watch_runs_total") >= 2 && strings.Contains(wt.logText(), "kube-system/service-registry changed")
	}, "sync") {
		return
	}
	e.watchEnv = nil
	if !watch(func() {
		createService(appNS, "notes", corev1.ServiceTypeLoadBalancer, 8080, "10.213.79.7", nil)
	}, func(wt *watcher) bool {
		return strings.Contains(wt.logText(), "service "+appNS+"/notes created") &&
			strings.Contains(e.configMap("service-registry")["services.json"], `"notes"`)
	}, "--on-services", "discover") {
		return
	}
	return "", ""
}

// TestEachRuleIsNeeded (issue 17): mno's roles (deploy/rbac/mno.yaml) are enough for
// everything mno does as its own identity — run as the user mno:controller bound to them,
// mnoScenario (the stock playbooks including discover, publish and unpublish, their run
// records and Events, mno watch sync and mno watch discover --on-services) succeeds, records
// only the last run (the older ones pruned), leaves mno's Events on a Node and a ConfigMap
// and releases publish's Lease — and no rule is superfluous: with any one removed, a step of
// the scenario fails or warns with a 403 naming that rule's resource (and, for a Role's
// rule, its namespace).
func TestEachRuleIsNeeded(t *testing.T) {
	e := newEnv(t, "laptop-1", "worker-1")
	srv := kubeapitest.Server(t)
	kc, err := srv.UserKubeconfig(rbac.User)
	if err != nil {
		t.Fatal(err)
	}
	// Its name has the user's ':', which $KUBECONFIG would split.
	mnoKubeconfig := filepath.Join(t.TempDir(), "mno.kubeconfig")
	if b, err := os.ReadFile(kc); err != nil || os.WriteFile(mnoKubeconfig, b, 0o600) != nil {
		t.Fatal(err)
	}
	full := rbac.MustLoad()
	subject := rbac.UserSubject()
	t.Cleanup(func() {
		e.deleteBindings(full)
		// An evicted pod stays (no kubelet ends it): later tests drain a worker-1 too.
		zero := int64(0)
		e.client.CoreV1().Pods("default").DeleteCollection(e.ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		e.client.CoreV1().Nodes().Delete(e.ctx, "worker-1", metav1.DeleteOptions{})
		for _, name := range scenarioLeases {
			e.client.CoordinationV1().Leases(rbac.Namespace).Delete(e.ctx, name, metav1.DeleteOptions{})
		}
		e.clearRecords()
	})

	e.applyRoles(full, full, subject, rbac.User)
	if out, step := e.mnoScenario(t, mnoKubeconfig); step != "" {
		t.Fatalf("with every rule, %s failed:\n%s", step, out)
	}
	if _, err := e.client.CoreV1().Nodes().Get(e.ctx, "worker-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the worker's Node was not deleted: %v", err)
	}
	if _, err := e.client.CoordinationV1().Leases(rbac.Namespace).Get(e.ctx, "mno-routes", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unpublish did not release the Lease mno-routes: %v", err)
	}
	e.confinedToRecords(t, mnoKubeconfig, full)
	// mno's Events: on the laptop's Node (namespace default) and on a ConfigMap it changed.
	for ns, kind := range map[string]string{"default": "Node", rbac.Namespace: "ConfigMap"} {
		evs, err := e.client.CoreV1().Events(ns).List(e.ctx, metav1.ListOptions{FieldSelector: "reason=" + history.ReasonRun + ",involvedObject.kind=" + kind})
		if err != nil || len(evs.Items) == 0 {
			t.Errorf("no %s Event on a %s in %s: %v", history.ReasonRun, kind, ns, err)
		}
	}

	for _, r := range allRules(full) {
		t.Run(strings.ReplaceAll(r.String(), " ", "_"), func(t *testing.T) {
			e.applyRoles(without(full, r), full, subject, rbac.User)
			out, where := e.mnoScenario(t, mnoKubeconfig)
			if where == "" {
				t.Fatalf("without %s everything still works: the rule is superfluous", r)
			}
			// klog's structured lines (an informer's) escape the quotes.
			out = strings.ReplaceAll(out, `\"`, `"`)
			ok := false
			for _, want := range r.forbiddenText() {
				ok = ok || strings.Contains(out, want)
			}
			if !ok || !strings.Contains(out, "forbidden") {
				t.Errorf("without %s, %s failed but not with a 403 naming it (want one of %q):\n%s", r, where, r.forbiddenText(), out)
			} else {
				t.Logf("without %s: %s refused (%s)", r, where, firstMatch(out, r.forbiddenText()))
			}
		})
	}
	e.applyRoles(full, full, subject, rbac.User)
}

// confinedToRecords checks, after mnoScenario, that the run records are in their own
// namespace (history.Namespace, which has a Role of mno's) and none in kube-system, and that
// mno's identity (kubeconfig) cannot list the ConfigMaps of kube-system, nor read or delete
// one there that is not mno's (coredns's) or delete one that is (cluster-info), while it may
// list and delete the records.
func (e *env) confinedToRecords(t *testing.T, kubeconfig string, roles rbac.Roles) {
	t.Helper()
	hasRole := false
	for _, r := range roles.Roles {
		hasRole = hasRole || r.Namespace == history.Namespace
	}
	if !hasRole || history.Namespace == rbac.Namespace {
		t.Errorf("the records' namespace %s has no Role of mno's (or is kube-system)", history.Namespace)
	}
	if got := e.legacyRecords(); len(got) != 0 {
		t.Errorf("a run record in kube-system: %s", got[0].Name)
	}
	coredns := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}, Data: map[string]string{"Corefile": ".:53 {}"}}
	if _, err := e.client.CoreV1().ConfigMaps("kube-system").Create(e.ctx, coredns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	mno, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cms := mno.CoreV1().ConfigMaps("kube-system")
	if _, err := cms.List(e.ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("mno may list the ConfigMaps of kube-system: %v", err)
	}
	if _, err := cms.List(e.ctx, metav1.ListOptions{LabelSelector: history.LabelRecord + "=run"}); !apierrors.IsForbidden(err) {
		t.Errorf("mno may list kube-system's ConfigMaps by the records' label: %v", err)
	}
	if _, err := cms.Get(e.ctx, "coredns", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("mno may read kube-system/coredns: %v", err)
	}
	for _, name := range []string{"coredns", "cluster-info"} {
		if err := cms.Delete(e.ctx, name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("mno may delete kube-system/%s: %v", name, err)
		}
		if _, err := e.client.CoreV1().ConfigMaps("kube-system").Get(e.ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("kube-system/%s after mno's refused delete: %v", name, err)
		}
	}
	if l, err := mno.CoreV1().ConfigMaps(history.Namespace).List(e.ctx, metav1.ListOptions{LabelSelector: history.LabelRecord + "=run"}); err != nil || len(l.Items) == 0 {
		t.Errorf("mno cannot list its records in %s: %v", history.Namespace, err)
	}
}

func firstMatch(out string, wants []string) string {
	for _, line := range strings.Split(out, "\n") {
		for _, w := range wants {
			if strings.Contains(line, w) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

// TestWatchServiceAccountToken (issue 17): `mno watch` running as a ServiceAccount bound to
// mno's roles, with a token from the TokenRequest API (as it runs inside the cluster), syncs
// the lab end to end: a service added to service-registry reaches the VPS's routes and the
// laptop's /etc/hosts.
func TestWatchServiceAccountToken(t *testing.T) {
	e := newEnv(t, "vps-1", "laptop-1")
	v, l := e.host("vps-1"), e.host("laptop-1")
	srv := kubeapitest.Server(t)
	e.initCluster("10.0.0.1")
	v.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hostsRunning)
	e.mustRun("add-vps", "name=vps-1", "address="+v.Addr, "domain=example.test", "email=ops@example.test", "host_key="+v.HostKey)
	e.mustRun("add-laptop", "name=laptop-1", "address="+l.Addr, "user=mno", "host_key="+l.HostKey)

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "mno", Namespace: rbac.Namespace}}
	if _, err := e.client.CoreV1().ServiceAccounts(rbac.Namespace).Create(e.ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	subject := rbac.ServiceAccount(rbac.Namespace, "mno")
	full := rbac.MustLoad()
	e.applyRoles(full, full, subject, "system:serviceaccount:kube-system:mno")
	t.Cleanup(func() {
		e.deleteBindings(full)
		e.client.CoordinationV1().Leases(rbac.Namespace).Delete(e.ctx, "mno-watch-sync", metav1.DeleteOptions{})
	})
	exp := int64(3600)
	tok, err := e.client.CoreV1().ServiceAccounts(rbac.Namespace).CreateToken(e.ctx, "mno",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	kc := filepath.Join(t.TempDir(), "sa.kubeconfig")
	cfg := fmt.Sprintf(`{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":%q,"certificate-authority-data":%q}}],`+
		`"users":[{"name":"mno","user":{"token":%q}}],"contexts":[{"name":"c","context":{"cluster":"c","user":"mno"}}],"current-context":"c"}`,
		srv.URL, base64.StdEncoding.EncodeToString(srv.Config.CAData), tok.Status.Token)
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	admin := e.kubeconfig
	e.kubeconfig = kc
	w := e.startWatcher(t, "sync")
	e.kubeconfig = admin
	waitCond(t, "the start run", time.Minute, func() bool { return w.metric("mno_watch_runs_total") >= 1 })
	if w.metric("mno_watch_leader") != 1 || strings.Contains(w.logText(), "forbidden") {
		t.Fatalf("the ServiceAccount's watcher:\n%s", w.logText())
	}
	e.setServices(map[string]any{"wiki": map[string]any{"subdomain": "wiki", "ip": "100.1.1.6", "port": 80, "public": true}})
	waitCond(t, "wiki on vps-1", time.Minute, func() bool { return routesHave(e, "vps-1", "wiki.example.test") })
	waitCond(t, "wiki on laptop-1", time.Minute, func() bool {
		return strings.Contains(string(mustRead(e, "laptop-1", "/etc/hosts")), "100.1.1.6\twiki.home.local")
	})
	if strings.Contains(w.logText(), "forbidden") {
		t.Errorf("the watcher was refused something:\n%s", w.logText())
	}
}
