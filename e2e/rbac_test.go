package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/deploy/rbac"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

// ruleRef names one rule of mno's roles for messages: "ClusterRole[3] nodes delete".
type ruleRef struct {
	role  string // "ClusterRole" or "Role"
	index int
	rule  rbacv1.PolicyRule
}

func (r ruleRef) String() string {
	return fmt.Sprintf("%s[%d] %s %s", r.role, r.index, strings.Join(r.rule.Resources, ","), strings.Join(r.rule.Verbs, ","))
}

// forbiddenText is what the API server's 403 for the rule says: "cannot VERB resource
// \"RES\"", or, for `bind` on roles, the escalation check's refusal.
func (r ruleRef) forbiddenText() []string {
	if contains(r.rule.Verbs, "bind") {
		return []string{"attempting to grant RBAC permissions not currently held"}
	}
	var out []string
	for _, v := range r.rule.Verbs {
		for _, res := range r.rule.Resources {
			out = append(out, fmt.Sprintf("cannot %s resource %q", v, res))
		}
	}
	return out
}

func allRules(roles rbac.Roles) []ruleRef {
	var out []ruleRef
	for i, r := range roles.ClusterRole.Rules {
		out = append(out, ruleRef{"ClusterRole", i, r})
	}
	for i, r := range roles.Role.Rules {
		out = append(out, ruleRef{"Role", i, r})
	}
	return out
}

// without returns the roles with one rule removed.
func without(roles rbac.Roles, r ruleRef) rbac.Roles {
	out := rbac.Roles{ClusterRole: roles.ClusterRole.DeepCopy(), Role: roles.Role.DeepCopy()}
	if r.role == "ClusterRole" {
		out.ClusterRole.Rules = append(out.ClusterRole.Rules[:r.index:r.index], out.ClusterRole.Rules[r.index+1:]...)
	} else {
		out.Role.Rules = append(out.Role.Rules[:r.index:r.index], out.Role.Rules[r.index+1:]...)
	}
	return out
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
		present[r.role+string(b)] = true
	}
	eventually(e.t, "RBAC reflects the roles", func() error {
		for _, r := range allRules(full) {
			b, _ := json.Marshal(r.rule)
			want := present[r.role+string(b)]
			res, sub, _ := strings.Cut(r.rule.Resources[0], "/")
			attr := &authorizationv1.ResourceAttributes{Verb: r.rule.Verbs[0], Group: r.rule.APIGroups[0], Resource: res, Subresource: sub}
			if r.role == "Role" {
				attr.Namespace = rbac.Namespace
			}
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

// mnoScenario is the stock playbooks in order, as mno's own identity would run them:
// init, add-laptop, sync, remove-node of a worker (drain: cordon, evict a pod, delete the
// Node) and of the laptop. It stops at the first failure and returns that run.
func (e *env) mnoScenario(t *testing.T, kubeconfig string) (failed *result, step string) {
	t.Helper()
	l, w := e.host("laptop-1"), e.host("worker-1")
	// The cluster as an admin leaves it: no mno state, a worker's Node with a pod on it.
	e.resetCluster()
	e.client.CoordinationV1().Leases(rbac.Namespace).Delete(e.ctx, "mno-watch-sync", metav1.DeleteOptions{})
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

	admin := e.kubeconfig
	defer func() { e.kubeconfig = admin }()
	e.kubeconfig = kubeconfig
	run := func(name string, params ...string) bool {
		r := e.run(name, params...)
		if r.exit != 0 {
			failed, step = &r, name+" "+strings.Join(params, " ")
			return false
		}
		return true
	}
	if !run("init", "cluster_name=home", "cluster_domain=home", "control_plane_ip=10.0.0.1") {
		return
	}
	// The worker, registered as add-worker leaves it (add-worker itself needs a kubelet).
	e.kubeconfig = admin
	reg := e.registry()
	reg["worker_nodes"] = []any{map[string]any{"name": "worker-1", "ip": w.Addr, "ssh_user": "root", "ssh_port": 22, "host_key": w.HostKey, "status": "active"}}
	b, _ := json.Marshal(reg)
	e.setConfigMap("sync-controller-registry", map[string]string{"registry.json": string(b)})
	e.kubeconfig = kubeconfig
	if !run("add-laptop", "name=laptop-1", "address="+l.Addr, "user=mno", "host_key="+l.HostKey) ||
		!run("sync") ||
		!run("remove-node", "name=worker-1") ||
		!run("remove-node", "name=laptop-1") {
		return
	}
	return nil, ""
}

// watchScenario starts `mno watch sync` as kubeconfig's identity and waits until it leads
// (nil) or logs a refusal of its Lease (the log).
func (e *env) watchScenario(t *testing.T, kubeconfig string) string {
	t.Helper()
	admin := e.kubeconfig
	e.kubeconfig = kubeconfig
	w := e.startWatcher(t, "sync")
	e.kubeconfig = admin
	defer func() { w.cmd.Process.Kill(); w.cmd.Wait() }()
	var log string
	waitCond(t, "the watcher to lead or be refused", time.Minute, func() bool {
		log = w.logText()
		return w.metric("mno_watch_leader") == 1 || strings.Contains(log, "forbidden")
	})
	if w.metric("mno_watch_leader") == 1 {
		return ""
	}
	return log
}

// TestEachRuleIsNeeded (issue 17): mno's roles (deploy/rbac/mno.yaml) are enough for the
// stock playbooks and `mno watch` — run as the user mno:controller bound to them, the whole
// sequence succeeds — and no rule is superfluous: with any one removed, a stock playbook
// (or mno watch, for its Lease) fails with a 403 naming that rule's resource.
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
		e.client.RbacV1().ClusterRoleBindings().Delete(e.ctx, rbac.Name, metav1.DeleteOptions{})
		e.client.RbacV1().RoleBindings(rbac.Namespace).Delete(e.ctx, rbac.Name, metav1.DeleteOptions{})
		// An evicted pod stays (no kubelet ends it): later tests drain a worker-1 too.
		zero := int64(0)
		e.client.CoreV1().Pods("default").DeleteCollection(e.ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		e.client.CoreV1().Nodes().Delete(e.ctx, "worker-1", metav1.DeleteOptions{})
		e.client.CoordinationV1().Leases(rbac.Namespace).Delete(e.ctx, "mno-watch-sync", metav1.DeleteOptions{})
	})

	e.applyRoles(full, full, subject, rbac.User)
	if r, step := e.mnoScenario(t, mnoKubeconfig); r != nil {
		t.Fatalf("with every rule, %s failed:\n%s", step, r.stderr)
	}
	if _, err := e.client.CoreV1().Nodes().Get(e.ctx, "worker-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the worker's Node was not deleted: %v", err)
	}
	if log := e.watchScenario(t, mnoKubeconfig); log != "" {
		t.Fatalf("with every rule, mno watch was refused:\n%s", log)
	}

	for _, r := range allRules(full) {
		t.Run(strings.ReplaceAll(r.String(), " ", "_"), func(t *testing.T) {
			e.applyRoles(without(full, r), full, subject, rbac.User)
			var out, where string
			if contains(r.rule.Resources, "leases") {
				out, where = e.watchScenario(t, mnoKubeconfig), "mno watch"
			} else if failed, step := e.mnoScenario(t, mnoKubeconfig); failed != nil {
				out, where = failed.stderr, step
			}
			if out == "" {
				t.Fatalf("without %s everything still works: the rule is superfluous", r)
			}
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
		e.client.RbacV1().ClusterRoleBindings().Delete(e.ctx, rbac.Name, metav1.DeleteOptions{})
		e.client.RbacV1().RoleBindings(rbac.Namespace).Delete(e.ctx, rbac.Name, metav1.DeleteOptions{})
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
