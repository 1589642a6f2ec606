package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

// laptopKubeconfig is the kubeconfig add-laptop or sync left on laptop h for user home.
type laptopKubeconfig struct {
	raw    string
	cfg    *clientcmdapi.Config
	cert   *x509.Certificate
	client kubernetes.Interface
}

func fetchKubeconfig(t *testing.T, h *hosts.Host, home string) laptopKubeconfig {
	t.Helper()
	raw := readFile(t, h, home+"/.kube/config")
	cfg, err := clientcmd.Load([]byte(raw))
	if err != nil {
		t.Fatalf("the laptop's kubeconfig does not load: %v", err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatalf("the laptop's kubeconfig: %v", err)
	}
	block, _ := pem.Decode(rc.CertData)
	if block == nil {
		t.Fatal("the laptop's kubeconfig has no client certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return laptopKubeconfig{raw: raw, cfg: cfg, cert: cert, client: cs}
}

// eventually retries check until it returns nil, for up to 10 s: the API
// server's RBAC authorizer sees a binding change through its watch cache, a
// few milliseconds after the write returns. It returns how long that took.
func eventually(t *testing.T, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < 10*time.Second {
		if err = check(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
	return 0
}

func forbidden(err error) error {
	if apierrors.IsForbidden(err) {
		return nil
	}
	if err == nil {
		return errors.New("allowed, want 403 Forbidden")
	}
	return fmt.Errorf("want 403 Forbidden, got %v", err)
}

// can checks every allowed action succeeds and every other is refused with 403.
func can(t *testing.T, k laptopKubeconfig, access string) {
	t.Helper()
	ctx := context.Background()
	c := k.client
	listCMs := func() error {
		_, err := c.CoreV1().ConfigMaps("kube-system").List(ctx, metav1.ListOptions{})
		return err
	}
	getSecrets := func() error { _, err := c.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); return err }
	createCM := func() error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "laptop-" + access + "-"}}
		_, err := c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	listNodes := func() error { _, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); return err }
	bindSelf := func() error {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "escalate-"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "someone"}}}
		crb, err := c.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
		if err == nil {
			c.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{})
		}
		return err
	}
	type action struct {
		name string
		do   func() error
		// allowed for these accesses
		admin, edit, view bool
	}
	actions := []action{
		{"list configmaps in kube-system", listCMs, true, true, true},
		{"create a configmap", createCM, true, true, false},
		{"list secrets", getSecrets, true, true, false},
		{"list nodes", listNodes, true, false, false},
		{"bind cluster-admin", bindSelf, true, false, false},
	}
	// The binding was just written: wait for the authorizer to see it.
	eventually(t, access+": list configmaps", listCMs)
	for _, a := range actions {
		allowed := map[string]bool{"admin": a.admin, "edit": a.edit, "view": a.view}[access]
		err := a.do()
		switch {
		case allowed && err != nil:
			t.Errorf("access=%s: %s: %v, want allowed", access, a.name, err)
		case !allowed && forbidden(err) != nil:
			t.Errorf("access=%s: %s: %v", access, a.name, forbidden(err))
		}
	}
}

// whoami asks the API server who the kubeconfig authenticates as.
func whoami(t *testing.T, k laptopKubeconfig) authenticationv1.UserInfo {
	t.Helper()
	r, err := k.client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return r.Status.UserInfo
}

func (e *env) binding(name string) *rbacv1.ClusterRoleBinding {
	e.t.Helper()
	b, err := e.client.RbacV1().ClusterRoleBindings().Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// secretFree checks that no part of the kubeconfig's credentials is in the run's output.
func secretFree(t *testing.T, r result, k laptopKubeconfig) {
	t.Helper()
	for _, u := range k.cfg.AuthInfos {
		for what, data := range map[string][]byte{"client key": u.ClientKeyData, "client certificate": u.ClientCertificateData} {
			block, _ := pem.Decode(data)
			if block == nil {
				t.Fatalf("no PEM %s in the kubeconfig", what)
			}
			b64 := strings.SplitN(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[1]), "\n", 2)[0]
			if strings.Contains(r.stdout+r.stderr, b64) || strings.Contains(r.stdout+r.stderr, string(data)) {
				t.Errorf("the %s is in the run's output", what)
			}
		}
	}
	if strings.Contains(r.stdout+r.stderr, "client-key-data") {
		t.Error("client-key-data in the run's output")
	}
}

// TestLaptopCredential (issue 17): add-laptop gives the laptop a client
// certificate of its own — user mno:laptop:NAME:SERIAL12, group mno:laptops,
// as the real API server authenticates it — and the kubeconfig fetched from
// the laptop can do what access= allows and no more (view, edit, admin).
// Changing access issues a new certificate and the previous one is refused.
// The key appears in no output, JSON event or diff, and nowhere on the
// control plane's disk.
func TestLaptopCredential(t *testing.T) {
	e := newEnv(t, "laptop-1")
	l := e.host("laptop-1")
	e.initCluster("10.0.0.1")
	srv := kubeapitest.Server(t)
	base := []string{"name=laptop-1", "address=" + l.Addr, "user=mno", "host_key=" + l.HostKey, "server=" + srv.URL}

	var prev *laptopKubeconfig
	for _, access := range []string{"view", "edit", "admin"} {
		r := e.mustRun("add-laptop", append(base, "access="+access, "lifetime=30d")...)
		k := fetchKubeconfig(t, l, "/home/mno")
		if fi, _ := l.Stat("/home/mno/.kube/config"); fi.Mode().Perm() != 0o600 {
			t.Errorf("kubeconfig mode %o", fi.Mode().Perm())
		}
		secretFree(t, r, k)
		serial := fmt.Sprintf("%032x", k.cert.SerialNumber)
		wantUser := "mno:laptop:laptop-1:" + serial[:12]
		if k.cert.Subject.CommonName != wantUser || strings.Join(k.cert.Subject.Organization, ",") != "mno:laptops" {
			t.Errorf("certificate subject %v, want CN=%s O=mno:laptops", k.cert.Subject, wantUser)
		}
		if life := k.cert.NotAfter.Sub(k.cert.NotBefore); life < 30*24*time.Hour || life > 30*24*time.Hour+time.Hour {
			t.Errorf("lifetime=30d gave a certificate valid %s", life)
		}
		can(t, k, access)
		who := whoami(t, k)
		if who.Username != wantUser || !contains(who.Groups, "mno:laptops") {
			t.Errorf("the API server sees %s %v, want %s in mno:laptops", who.Username, who.Groups, wantUser)
		}
		b := e.binding("mno-laptop-laptop-1")
		wantRole := map[string]string{"admin": "cluster-admin", "edit": "edit", "view": "view"}[access]
		if b == nil || b.RoleRef.Name != wantRole || len(b.Subjects) != 1 || b.Subjects[0].Name != wantUser ||
			b.Annotations["mno.sh/host-key"] != l.HostKey || b.Annotations["mno.sh/address"] != l.Addr || b.Annotations["mno.sh/serial"] != serial {
			t.Errorf("binding: %+v", b)
		}
		if prev != nil {
			// The previous certificate is valid for weeks yet, but no longer bound.
			eventually(t, "the previous certificate is refused", func() error {
				_, err := prev.client.CoreV1().ConfigMaps("kube-system").List(e.ctx, metav1.ListOptions{})
				return forbidden(err)
			})
		}
		prev = &k
	}

	// mno state shows the laptop's identity, access and expiry.
	b := e.binding("mno-laptop-laptop-1")
	out, code := mnoState(t, e, "state")
	if code != 0 || !strings.Contains(out, "LAPTOP CREDENTIALS") || !strings.Contains(out, "laptop-1  "+b.Subjects[0].Name+"  admin (cluster-admin)  "+b.Annotations["mno.sh/not-after"]) ||
		!strings.Contains(out, "matches") {
		t.Errorf("mno state: exit %d\n%s", code, out)
	}

	// Same parameters again: nothing to do, the certificate stays.
	r := e.mustRun("add-laptop", append(base, "access=admin", "lifetime=30d")...)
	if r.changed() != 0 || readFile(t, l, "/home/mno/.kube/config") != prev.raw {
		t.Errorf("add-laptop again changed %d:\n%s", r.changed(), r.stderr)
	}
	// rotate=true: a new certificate, the old one refused.
	r = e.mustRun("add-laptop", append(base, "access=admin", "lifetime=30d", "rotate=true")...)
	if k := fetchKubeconfig(t, l, "/home/mno"); k.cert.SerialNumber.Cmp(prev.cert.SerialNumber) == 0 {
		t.Error("rotate=true kept the certificate")
	}
	// No private key of a laptop on the control plane's disk.
	for _, dir := range []string{e.home, srv.TLSDir(), os.TempDir()} {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), string(prev.cfg.AuthInfos["default"].ClientKeyData)) {
				t.Errorf("the laptop's key is on the control plane's disk: %s", path)
			}
			return nil
		})
	}
}

// TestLaptopRemoveRevokes (issue 17): remove-node deletes the laptop's
// binding before anything else, so its kubeconfig — whose certificate has
// not expired — gets 403 from the next request on, even when the laptop
// cannot be reached (a lost laptop); force=true then unregisters it.
func TestLaptopRemoveRevokes(t *testing.T) {
	e := newEnv(t, "laptop-1")
	l := e.host("laptop-1")
	e.initCluster("10.0.0.1")
	srv := kubeapitest.Server(t)
	e.mustRun("add-laptop", "name=laptop-1", "address="+l.Addr, "user=mno", "host_key="+l.HostKey, "server="+srv.URL)
	k := fetchKubeconfig(t, l, "/home/mno")
	can(t, k, "admin")

	if err := e.lab.Partition("laptop-1"); err != nil {
		t.Fatal(err)
	}
	r := e.run("remove-node", "name=laptop-1", "timeout=2s")
	if r.exit == 0 || !strings.Contains(r.stderr, "credential revoked (ClusterRoleBinding mno-laptop-laptop-1 deleted)") {
		t.Errorf("remove-node of an unreachable laptop: exit %d\n%s", r.exit, r.stderr)
	}
	took := eventually(t, "the removed laptop's kubeconfig is refused", func() error {
		_, err := k.client.CoreV1().ConfigMaps("kube-system").List(e.ctx, metav1.ListOptions{})
		return forbidden(err)
	})
	t.Logf("refused %s after remove-node returned", took)
	if k.cert.NotAfter.Before(time.Now()) {
		t.Fatal("the certificate expired: the test proves nothing")
	}
	// Exit 2: the laptop was unreachable (force=true removes it anyway).
	r = e.run("remove-node", "name=laptop-1", "timeout=2s", "force=true")
	if r.exit != 2 || len(e.registry()["management_laptops"].([]any)) != 0 || e.binding("mno-laptop-laptop-1") != nil {
		t.Errorf("remove-node force=true: exit %d\n%s", r.exit, r.stderr)
	}
}

// TestLaptopNotEnrolled (issue 17): whoever may write the registry
// ConfigMap cannot get a credential. An entry added by hand (its own address
// and host key) is reported by sync with a warning naming it, never
// connected to, and gets no kubeconfig; an enrolled laptop's entry altered to
// point at another host is refused the same way, the other host gets
// nothing and the real laptop's binding is untouched.
func TestLaptopNotEnrolled(t *testing.T) {
	e := newEnv(t, "laptop-1", "laptop-2")
	l1, l2 := e.host("laptop-1"), e.host("laptop-2")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"wiki": map[string]any{"subdomain": "wiki", "ip": "100.122.68.207"}})
	hostsBefore := readFile(t, l2, "/etc/hosts")

	// 1. A hand-written entry: laptop-2's address and pinned key.
	reg := e.registry()
	reg["management_laptops"] = []any{map[string]any{"name": "evil", "ip": l2.Addr, "ssh_user": "mno", "ssh_port": 22, "host_key": l2.HostKey, "status": "active"}}
	b, _ := json.Marshal(reg)
	e.setConfigMap("sync-controller-registry", map[string]string{"registry.json": string(b)})
	r := e.run("sync")
	if !strings.Contains(r.stderr, "laptop evil: not enrolled by this control plane (no ClusterRoleBinding mno-laptop-evil)") {
		t.Errorf("sync does not report the hand-written entry:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "1 laptop not matching its enrolment got nothing") {
		t.Errorf("the recap does not count it:\n%s", r.stderr)
	}
	if _, err := l2.Stat("/home/mno/.kube/config"); err == nil {
		t.Error("the hand-written entry got a kubeconfig")
	}
	if got := readFile(t, l2, "/etc/hosts"); got != hostsBefore {
		t.Errorf("the hand-written entry got /etc/hosts:\n%s", got)
	}
	if strings.Contains(r.stdout, `"target":"evil","kind":"connect"`) || strings.Contains(r.stderr, "[evil] connect") {
		t.Errorf("sync connected to the hand-written entry:\n%s", r.stderr)
	}

	// 2. An enrolled laptop's entry altered to another host.
	e.setConfigMap("sync-controller-registry", map[string]string{})
	e.mustRun("add-laptop", "name=laptop-1", "address="+l1.Addr, "user=mno", "host_key="+l1.HostKey)
	before := e.binding("mno-laptop-laptop-1")
	reg = e.registry()
	ent := reg["management_laptops"].([]any)[0].(map[string]any)
	ent["ip"], ent["host_key"] = l2.Addr, l2.HostKey
	b, _ = json.Marshal(reg)
	e.setConfigMap("sync-controller-registry", map[string]string{"registry.json": string(b)})
	r = e.run("sync")
	if !strings.Contains(r.stderr, "laptop laptop-1: registry ip") || !strings.Contains(r.stderr, "differs from the enrolment's") {
		t.Errorf("sync does not report the altered entry:\n%s", r.stderr)
	}
	if _, err := l2.Stat("/home/mno/.kube/config"); err == nil {
		t.Error("the altered entry's host got a kubeconfig")
	}
	if after := e.binding("mno-laptop-laptop-1"); after == nil || after.ResourceVersion != before.ResourceVersion {
		t.Error("the enrolment changed")
	}
}

// TestLaptopRenewal (issue 17): once two thirds of the certificate's
// lifetime have passed, sync pushes a new certificate over the pinned
// connection and binds it; the old one is refused, and a sync before that
// point changes nothing. The passing of time is simulated by moving the
// enrolment's renew-after into the past (mno's only clock for renewal).
func TestLaptopRenewal(t *testing.T) {
	e := newEnv(t, "laptop-1")
	l := e.host("laptop-1")
	e.initCluster("10.0.0.1")
	srv := kubeapitest.Server(t)
	r := e.mustRun("add-laptop", "name=laptop-1", "address="+l.Addr, "user=mno", "host_key="+l.HostKey, "server="+srv.URL, "lifetime=3h", "access=view")
	old := fetchKubeconfig(t, l, "/home/mno")
	b := e.binding("mno-laptop-laptop-1")
	renew, err := time.Parse(time.RFC3339, b.Annotations["mno.sh/renew-after"])
	if err != nil {
		t.Fatal(err)
	}
	if d := renew.Sub(old.cert.NotAfter.Add(-3 * time.Hour)); d < -time.Minute || d > 2*time.Hour+time.Minute {
		t.Errorf("renew-after %s is not two thirds into %s..%s", renew, old.cert.NotBefore, old.cert.NotAfter)
	}
	if r = e.mustRun("sync"); r.changed() != 0 || readFile(t, l, "/home/mno/.kube/config") != old.raw {
		t.Errorf("sync before renewal is due changed %d:\n%s", r.changed(), r.stderr)
	}

	b.Annotations["mno.sh/renew-after"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if _, err := e.client.RbacV1().ClusterRoleBindings().Update(e.ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun("sync")
	k := fetchKubeconfig(t, l, "/home/mno")
	if k.cert.SerialNumber.Cmp(old.cert.SerialNumber) == 0 {
		t.Fatalf("sync did not renew the certificate:\n%s", r.stderr)
	}
	secretFree(t, r, k)
	// Within the same second the expiry may be equal (seconds precision), never earlier.
	if k.cert.NotAfter.Before(old.cert.NotAfter) || k.cert.NotAfter.Sub(k.cert.NotBefore) > 3*time.Hour+10*time.Minute {
		t.Errorf("renewed certificate %s..%s: not the enrolment's lifetime (3h)", k.cert.NotBefore, k.cert.NotAfter)
	}
	can(t, k, "view")
	eventually(t, "the old certificate is refused", func() error {
		_, err := old.client.CoreV1().ConfigMaps("kube-system").List(e.ctx, metav1.ListOptions{})
		return forbidden(err)
	})
	if r = e.mustRun("sync"); r.changed() != 0 {
		t.Errorf("sync after renewal changed %d:\n%s", r.changed(), r.stderr)
	}
}

// TestLaptopCredentialHostileParams (issue 17): hostile name, access and
// lifetime values are refused naming the parameter, before anything is
// written: no binding, no registry entry, no file on the laptop.
func TestLaptopCredentialHostileParams(t *testing.T) {
	e := newEnv(t, "laptop-1")
	l := e.host("laptop-1")
	e.initCluster("10.0.0.1")
	regBefore := e.configMap("sync-controller-registry")["registry.json"]
	base := map[string]string{"name": "laptop-1", "address": l.Addr, "user": "mno", "host_key": l.HostKey}
	cases := []struct{ param, value, want string }{
		{"name", "laptop-1\nroot", "parameter name:"},
		{"name", "../../etc", "parameter name:"},
		{"name", "a b", "parameter name:"},
		{"name", "läptop", "parameter name:"},
		{"name", strings.Repeat("a", 300), "parameter name:"},
		{"name", "x/y", "parameter name:"},
		{"name", "", "parameter name:"},
		{"access", "root", "parameter access:"},
		{"access", "cluster-admin", "parameter access:"},
		{"access", "ADMIN", "parameter access:"},
		{"access", "admin\n", "parameter access:"},
		{"access", "", "parameter access:"},
		{"access", "view,admin", "parameter access:"},
		{"access", "vïew", "parameter access:"},
		{"lifetime", "-1h", "parameter lifetime:"},
		{"lifetime", "0", "parameter lifetime:"},
		{"lifetime", "30m", "parameter lifetime:"},
		{"lifetime", "1096d", "parameter lifetime:"},
		{"lifetime", "99999999999999999999d", "parameter lifetime:"},
		{"lifetime", "abc", "parameter lifetime:"},
		{"lifetime", "1h;reboot", "parameter lifetime:"},
		{"lifetime", "", "parameter lifetime:"},
		{"lifetime", "٣d", "parameter lifetime:"},
		{"lifetime", strings.Repeat("9", 5000) + "h", "parameter lifetime:"},
	}
	for _, c := range cases {
		t.Run(c.param+"="+fmt.Sprintf("%.20q", c.value), func(t *testing.T) {
			var params []string
			for k, v := range base {
				if k != c.param {
					params = append(params, k+"="+v)
				}
			}
			params = append(params, c.param+"="+c.value)
			r := e.run("add-laptop", params...)
			if r.exit != 1 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, want 1 with %q:\n%s", r.exit, c.want, r.stderr)
			}
			if r.changed() != 0 || strings.Contains(r.stdout, `"kind":"connect"`) {
				t.Errorf("something was done:\n%s", r.stderr)
			}
		})
	}
	list, err := e.client.RbacV1().ClusterRoleBindings().List(e.ctx, metav1.ListOptions{LabelSelector: "mno.sh/credential=laptop"})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("bindings written: %v %v", list, err)
	}
	if got := e.configMap("sync-controller-registry")["registry.json"]; got != regBefore {
		t.Errorf("registry written:\n%s", got)
	}
	if _, err := l.Stat("/home/mno/.kube"); err == nil {
		t.Error("something was written on the laptop")
	}
}
