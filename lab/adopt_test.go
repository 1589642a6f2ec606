package lab_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/lab"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
	"github.com/mno-sh/mno/lab/traefik/traefiktest"
)

// adoptRun is one playbook run against the lab.
type adoptRun struct {
	exit   int
	stderr string
	events []journal.Event
}

func (r adoptRun) changed() int {
	n := 0
	for _, ev := range r.events {
		if ev.Type == "recap" {
			for _, c := range ev.Targets {
				n += c.Changed
			}
		}
	}
	return n
}

func (r adoptRun) errors(target string) string {
	var b strings.Builder
	for _, ev := range r.events {
		if ev.Target == target && ev.Error != "" {
			b.WriteString(ev.Error + "\n")
		}
		if ev.Type == "warning" && ev.Target == target {
			b.WriteString(ev.Message + "\n")
		}
	}
	return b.String()
}

func runPlaybook(t *testing.T, cl *lab.Cluster, dry bool, playbook string, params ...string) adoptRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	res := engine.Run(context.Background(), engine.Options{
		Playbook: playbook, Params: params, DryRun: dry, ShowDiff: true, JSON: true, Timeout: 5 * time.Minute,
		Config: cl.Config(), Root: cl.Dir, Embedded: mno.Files, Stdout: &stdout, Stderr: &stderr,
	})
	t.Logf("mno run %s%s %s → exit %d\n%s", map[bool]string{true: "--dry-run ", false: ""}[dry], playbook, strings.Join(params, " "), res.Exit, stderr.String())
	r := adoptRun{exit: res.Exit, stderr: stderr.String()}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var ev journal.Event
		if line != "" && json.Unmarshal([]byte(line), &ev) == nil {
			r.events = append(r.events, ev)
		}
	}
	return r
}

// served is one GET https://demo.example.test/ through the VPS.
type served struct {
	at     time.Time
	took   time.Duration
	status int
	body   string
	cert   string // SHA-256 of the leaf certificate
	err    error
}

func get(addr, host string) (s served) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: host},
		DisableKeepAlives: true, // every request is a new connection: a refused one would show
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, net.JoinHostPort(addr, "443"))
		},
	}
	defer tr.CloseIdleConnections()
	// A slow answer is an answer (the test shares two cores with others); a
	// refused or reset connection, an error status or another certificate is not.
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	s.at = time.Now()
	defer func() { s.took = time.Since(s.at) }()
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		s.err = err
		return s
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s.status, s.body = resp.StatusCode, string(b)
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		sum := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
		s.cert = hex.EncodeToString(sum[:])
	}
	return s
}

func nodeFile(t *testing.T, cl *lab.Cluster, node, path string) []byte {
	t.Helper()
	h, err := cl.Host(node)
	if err != nil {
		t.Fatal(err)
	}
	data, err := h.ReadFile(path)
	if err != nil {
		t.Fatalf("%s:%s: %v", node, path, err)
	}
	return data
}

func nodeSh(t *testing.T, cl *lab.Cluster, node, script string) string {
	t.Helper()
	var out bytes.Buffer
	code, err := cl.Exec(context.Background(), node, nil, &out, &out, nil, "sh", "-c", script)
	if err != nil || code != 0 {
		t.Fatalf("%s: %s: exit %d %v\n%s", node, script, code, err, out.String())
	}
	return out.String()
}

func registryEntry(t *testing.T, cs kubernetes.Interface, name string) map[string]any {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "sync-controller-registry", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(cm.Data["registry.json"]), &doc); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"vps_nodes", "management_laptops", "worker_nodes"} {
		list, _ := doc[l].([]any)
		for _, e := range list {
			if m, ok := e.(map[string]any); ok && m["name"] == name {
				return m
			}
		}
	}
	t.Fatalf("no registry entry %s in %s", name, cm.Data["registry.json"])
	return nil
}

// TestAdoptFromMyNodeOne takes a lab set up as MyNodeOne leaves a cluster
// (lab up --from mynodeone) over with `mno run adopt`: unconfirmed nodes are
// untouched, a wrong fingerprint is refused with both, the dry run changes
// nothing, the confirmed VPS moves to mno's Traefik while a client keeps
// getting the same answer and the same certificate from it (no request
// fails), ACME storage carried over byte for byte, MyNodeOne's container
// gone, its files in one dated backup, its sync controller stopped before
// the first registry write; an unreachable node is reported and left as it is; then sync works, and adopt and sync run again
// change nothing; a host key that changed against the pin is refused with
// both fingerprints; and undo plus the backup's RESTORE.txt bring MyNodeOne's registry and
// Traefik back.
func TestAdoptFromMyNodeOne(t *testing.T) {
	hoststest.Require(t)
	kubeapitest.Binaries(t)
	traefiktest.Binary(t)
	if err := lab.CheckPrivileges(); err != nil {
		t.Skip(err)
	}
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := lab.Up(ctx, lab.Options{Dir: t.TempDir(), VPS: 1, Laptops: 1, Exe: exe, NoBuild: true, From: lab.FromMyNodeOne})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	vps, _ := cl.Node("vps-1")
	laptop, _ := cl.Node("laptop-1")
	kc, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(kc)
	demoHost := "demo." + lab.MyNodeOneDomain
	home := "/home/" + lab.MyNodeOneVPSUser

	// MyNodeOne's Traefik serves the demo service with the ACME storage's certificate.
	acme := nodeFile(t, cl, "vps-1", home+"/traefik/letsencrypt/acme.json")
	wantCert := acmeCert(t, acme)
	// The routes file and the ACME certificates load a moment after Traefik listens.
	serving := func() served {
		var s served
		for i := 0; i < 150; i++ {
			if s = get(vps.Addr, demoHost); s.err == nil && s.status == 200 && s.cert == wantCert {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return s
	}
	before := serving()
	if before.err != nil || before.status != 200 || !strings.Contains(before.body, "Hello from the mno lab demo service") {
		var out bytes.Buffer
		cl.Exec(context.Background(), "vps-1", nil, &out, &out, nil, "sh", "-c", "docker ps -a; tail -5 /run/mno-lab-docker/traefik/log; ps -ef | grep -i traefik")
		t.Fatalf("MyNodeOne's Traefik: status %d err %v\n%s", before.status, before.err, out.String())
	}
	if before.cert != wantCert {
		t.Fatalf("MyNodeOne's Traefik serves certificate %.12s, not the one in its acme.json (%.12s)", before.cert, wantCert)
	}
	regBefore := registryEntry(t, cs, "vps-1")
	calls := filepath.Join(cl.CPRoot, "systemd", "calls.log")

	// 1. Nothing confirmed (no terminal): every node is shown with its
	// fingerprint and left as it is; exit 2.
	r := runPlaybook(t, cl, false, "adopt")
	if r.exit != 2 {
		t.Fatalf("adopt without accept=: exit %d, want 2", r.exit)
	}
	for _, n := range []lab.Node{vps, laptop} {
		if e := r.errors(n.Name); !strings.Contains(e, "not confirmed") || !strings.Contains(e, "accept="+n.Name+":"+n.Fingerprint) {
			t.Errorf("%s: report does not say how to confirm %s: %q", n.Name, n.Fingerprint, e)
		}
	}
	if r.changed() != 0 {
		t.Errorf("unconfirmed adopt changed %d things", r.changed())
	}
	if _, err := os.Stat(calls); err == nil {
		if b, _ := os.ReadFile(calls); bytes.Contains(b, []byte("stop")) {
			t.Errorf("the sync controller was stopped though nothing was adopted:\n%s", b)
		}
	}

	// 2. The dry run shows the plan and changes nothing.
	accVPS := "accept=vps-1:" + vps.Fingerprint
	r = runPlaybook(t, cl, true, "adopt", accVPS, "only=vps-1")
	if r.exit != 0 {
		t.Fatalf("dry run: exit %d", r.exit)
	}
	for _, want := range []string{"/etc/traefik/traefik.yml", "/etc/traefik/dynamic/mno-routes.yml", "/var/lib/mno/traefik/acme.json",
		"traefik-handover", "sync-controller-registry", "systemctl stop " + lab.MyNodeOneUnit} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("dry run does not show %q", want)
		}
	}
	if strings.Contains(r.stderr, "BEGIN EC PRIVATE KEY") || strings.Contains(r.stderr, `"certificate"`) {
		t.Error("the dry run shows the ACME storage's content")
	}
	if got := registryEntry(t, cs, "vps-1"); fmt.Sprint(got) != fmt.Sprint(regBefore) {
		t.Errorf("dry run changed the registry: %v", got)
	}
	if out := nodeSh(t, cl, "vps-1", "docker ps -q --filter name=^traefik$ --filter status=running"); strings.TrimSpace(out) == "" {
		t.Fatal("dry run stopped MyNodeOne's Traefik")
	}

	// 3. The VPS confirmed, the laptop with a wrong fingerprint; a client
	// requests the demo service through the VPS all along.
	var (
		mu   sync.Mutex
		seen []served
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			s := get(vps.Addr, demoHost)
			mu.Lock()
			seen = append(seen, s)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	wrong := "SHA256:" + strings.Repeat("A", 43)
	r = runPlaybook(t, cl, false, "adopt", accVPS+",laptop-1:"+wrong)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	if r.exit != 2 {
		t.Errorf("adopt with a wrong laptop fingerprint: exit %d, want 2", r.exit)
	}
	if e := r.errors("laptop-1"); !strings.Contains(e, wrong) || !strings.Contains(e, laptop.Fingerprint) {
		t.Errorf("laptop refusal does not name both fingerprints: %q", e)
	}
	if e := r.errors("vps-1"); e != "" {
		t.Fatalf("vps-1 failed: %s", e)
	}
	var failed []string
	var maxGap, slowest time.Duration
	for i, s := range seen {
		if s.err != nil || s.status != 200 || s.body != before.body || s.cert != before.cert {
			failed = append(failed, fmt.Sprintf("%s: status %d err %v cert %.12s", s.at.Format("15:04:05.000"), s.status, s.err, s.cert))
		}
		if i > 0 && s.at.Sub(seen[i-1].at) > maxGap {
			maxGap = s.at.Sub(seen[i-1].at)
		}
		if s.took > slowest {
			slowest = s.took
		}
	}
	t.Logf("during adopt: %d requests through vps-1, %d failed, slowest answer %s, longest time between two requests %s", len(seen), len(failed), slowest, maxGap)
	if len(failed) > 0 || len(seen) < 20 {
		t.Errorf("%d of %d requests during the switch were not answered as before:\n%s", len(failed), len(seen), strings.Join(failed, "\n"))
	}
	after := get(vps.Addr, demoHost)
	if after.err != nil || after.body != before.body || after.cert != before.cert {
		t.Errorf("after adopt: %+v, want the same answer and certificate %.12s", after, before.cert)
	}
	if got := nodeFile(t, cl, "vps-1", "/var/lib/mno/traefik/acme.json"); !bytes.Equal(got, acme) {
		t.Error("mno's acme.json differs from MyNodeOne's")
	}
	if out := nodeSh(t, cl, "vps-1", "for t in nat mangle filter; do iptables -w -t $t -S; done"); strings.Contains(out, "mno-handover") {
		t.Errorf("the hand-over's iptables rules are left:\n%s", out)
	}
	if out := nodeSh(t, cl, "vps-1", "docker ps -aq --filter name=^traefik$; docker ps -q --filter name=^mno-traefik$"); len(strings.Fields(out)) != 1 {
		t.Errorf("containers after adopt: %q, want mno-traefik only", out)
	}
	backup := strings.TrimSpace(nodeSh(t, cl, "vps-1", "ls -d /var/backups/mno/mynodeone-*; test ! -e "+home+"/traefik"))
	if strings.Count(backup, "\n") != 0 || backup == "" {
		t.Fatalf("backups: %q, want one", backup)
	}
	for _, f := range []string{"traefik/docker-compose.yml", "traefik/traefik.yml", "traefik/config/mynodeone-routes.yml", "RESTORE.txt"} {
		nodeFile(t, cl, "vps-1", backup+"/"+f)
	}
	if got := nodeFile(t, cl, "vps-1", backup+"/traefik/letsencrypt/acme.json"); !bytes.Equal(got, acme) {
		t.Error("the backup's acme.json differs")
	}
	if s := string(nodeFile(t, cl, "vps-1", "/etc/traefik/traefik.yml")); !strings.Contains(s, "dashboard: false") || !strings.Contains(s, lab.MyNodeOneEmail) {
		t.Errorf("mno's static configuration:\n%s", s)
	}
	ak := string(nodeFile(t, cl, "vps-1", "/home/mno/.ssh/authorized_keys"))
	if !strings.HasPrefix(ak, `from="`+cl.Gateway+`" ssh-ed25519 `) {
		t.Errorf("mno's key on vps-1: %q", ak)
	}
	e := registryEntry(t, cs, "vps-1")
	if e["ssh_user"] != "mno" || e["domain"] != lab.MyNodeOneDomain || !strings.HasPrefix(fmt.Sprint(e["host_key"]), "ssh-ed25519 ") || e["webhook_port"] == nil {
		t.Errorf("vps-1 registered as %v", e)
	}
	if l := registryEntry(t, cs, "laptop-1"); l["host_key"] != nil || l["ssh_user"] != "alice" {
		t.Errorf("refused laptop touched in the registry: %v", l)
	}
	if ak := string(nodeFile(t, cl, "laptop-1", "/home/alice/.ssh/authorized_keys")); strings.Contains(ak, "from=") {
		t.Errorf("refused laptop got mno's key: %q", ak)
	}
	// MyNodeOne's sync controller: stopped and disabled before the first registry write.
	stopAt, writeAt := -1, -1
	for i, ev := range r.events {
		if ev.Type == "effect_start" && strings.Contains(ev.Desc, "disable "+lab.MyNodeOneUnit) && stopAt < 0 {
			stopAt = i
		}
		if ev.Type == "effect_end" && strings.HasPrefix(ev.Kind, "configmap.update") && ev.Changed != nil && *ev.Changed && writeAt < 0 {
			writeAt = i
		}
	}
	if stopAt < 0 || writeAt < 0 || stopAt > writeAt {
		t.Errorf("sync controller disabled at event %d, first registry write at %d", stopAt, writeAt)
	}
	for _, f := range []string{".enabled", ".active"} {
		if _, err := os.Stat(filepath.Join(cl.CPRoot, "systemd", lab.MyNodeOneUnit+".service"+f)); err == nil {
			t.Errorf("the sync controller is still %s", f[1:])
		}
	}

	// 4. The laptop unreachable: reported, left as it is, exit 2.
	hl, err := cl.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	if err := hl.Partition("laptop-1"); err != nil {
		t.Fatal(err)
	}
	r = runPlaybook(t, cl, false, "adopt", "accept=laptop-1:"+laptop.Fingerprint, "timeout=2s")
	if err := hl.Heal("laptop-1"); err != nil {
		t.Fatal(err)
	}
	unreachable := 0
	for _, ev := range r.events {
		if ev.Type == "recap" {
			unreachable = ev.Targets["laptop-1"].Unreachable
		}
	}
	if r.exit != 2 || unreachable != 1 || r.changed() != 0 {
		t.Errorf("unreachable laptop: exit %d, unreachable %d, changed %d; want 2, 1, 0", r.exit, unreachable, r.changed())
	}
	if l := registryEntry(t, cs, "laptop-1"); l["host_key"] != nil {
		t.Errorf("unreachable laptop registered: %v", l)
	}

	// 5. The laptop, confirmed; the VPS is skipped.
	r = runPlaybook(t, cl, false, "adopt", "accept=laptop-1:"+laptop.Fingerprint)
	if r.exit != 0 || !strings.Contains(r.stderr, "[vps-1] already adopted") {
		t.Fatalf("adopt laptop-1: exit %d", r.exit)
	}
	if l := registryEntry(t, cs, "laptop-1"); l["ssh_user"] != "alice" || l["host_key"] == nil {
		t.Errorf("laptop-1 registered as %v", l)
	}
	// Enrolled with the confirmed key and given its own credential (issue 17).
	if b, err := cs.RbacV1().ClusterRoleBindings().Get(context.Background(), "mno-laptop-laptop-1", metav1.GetOptions{}); err != nil ||
		b.Annotations["mno.sh/host-key"] != registryEntry(t, cs, "laptop-1")["host_key"] || b.RoleRef.Name != "cluster-admin" ||
		!strings.HasPrefix(b.Subjects[0].Name, "mno:laptop:laptop-1:") {
		t.Errorf("laptop-1's enrolment: %v %v", b, err)
	}

	// 6. sync works on the adopted cluster; it and adopt change nothing the second time.
	if r := runPlaybook(t, cl, false, "sync"); r.exit != 0 {
		t.Fatalf("sync after adopt: exit %d", r.exit)
	}
	for _, pb := range []string{"sync", "adopt"} {
		if r := runPlaybook(t, cl, false, pb); r.exit != 0 || r.changed() != 0 {
			t.Errorf("second %s: exit %d, changed %d", pb, r.exit, r.changed())
		}
	}
	if s := get(vps.Addr, demoHost); s.err != nil || s.body != before.body || s.cert != before.cert {
		t.Errorf("after sync: %+v", s)
	}

	// 7. A host key that no longer matches the pin (a reinstalled node, or
	// someone in between): refused with both fingerprints.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	op, _ := ssh.NewPublicKey(other.Public())
	pinned := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(op)))
	setPin(t, cs, "vps-1", pinned)
	r = runPlaybook(t, cl, false, "adopt")
	if e := r.errors("vps-1"); r.exit != 2 || !strings.Contains(e, ssh.FingerprintSHA256(op)) || !strings.Contains(e, vps.Fingerprint) {
		t.Errorf("changed host key: exit %d, %q; want both fingerprints", r.exit, e)
	}
	if r.changed() != 0 {
		t.Errorf("a refused adopt changed %d things", r.changed())
	}

	// 8. undo: MyNodeOne's registry back, its sync controller enabled again.
	if r := runPlaybook(t, cl, false, "adopt", "undo=true"); r.exit != 0 {
		t.Fatalf("undo: exit %d", r.exit)
	}
	if got := registryEntry(t, cs, "vps-1"); fmt.Sprint(got) != fmt.Sprint(regBefore) {
		t.Errorf("undo: vps-1 is %v, want %v", got, regBefore)
	}
	if _, err := os.Stat(filepath.Join(cl.CPRoot, "systemd", lab.MyNodeOneUnit+".service.active")); err != nil {
		t.Error("undo did not start the sync controller again")
	}
	// The node's side: the commands RESTORE.txt gives, as written (the lab's
	// docker needs root, so "sudo -u USER" is left out), bring MyNodeOne's
	// Traefik back, serving the same certificate.
	var cmds []string
	for _, l := range strings.Split(string(nodeFile(t, cl, "vps-1", backup+"/RESTORE.txt")), "\n") {
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "  #") && !strings.Contains(l, "mno run") {
			cmds = append(cmds, strings.Replace(strings.TrimSpace(l), "sudo -u "+lab.MyNodeOneVPSUser+" ", "", 1))
		}
	}
	if len(cmds) != 4 {
		t.Fatalf("RESTORE.txt commands: %q", cmds)
	}
	nodeSh(t, cl, "vps-1", "set -e; "+strings.Join(cmds, "; "))
	if back := serving(); back.body != before.body || back.cert != before.cert {
		t.Errorf("after going back: %+v, want MyNodeOne's Traefik serving as before", back)
	}
	if out := nodeSh(t, cl, "vps-1", "docker ps -q --filter name=^traefik$ --filter status=running; docker ps -aq --filter name=^mno-traefik$"); len(strings.Fields(out)) != 1 {
		t.Errorf("containers after going back: %q, want MyNodeOne's traefik only", out)
	}
}

func setPin(t *testing.T, cs kubernetes.Interface, name, key string) {
	t.Helper()
	api := cs.CoreV1().ConfigMaps("kube-system")
	cm, err := api.Get(context.Background(), "sync-controller-registry", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal([]byte(cm.Data["registry.json"]), &doc)
	for _, l := range []string{"vps_nodes", "management_laptops"} {
		for _, e := range doc[l].([]any) {
			if m := e.(map[string]any); m["name"] == name {
				m["host_key"] = key
			}
		}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	cm.Data["registry.json"] = string(b)
	if _, err := api.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// acmeCert is the SHA-256 of the certificate an acme.json holds for the
// resolver letsencrypt: what Traefik serves when it uses that storage.
func acmeCert(t *testing.T, acme []byte) string {
	t.Helper()
	var doc map[string]struct {
		Certificates []struct {
			Certificate []byte `json:"certificate"`
		}
	}
	if err := json.Unmarshal(acme, &doc); err != nil || len(doc["letsencrypt"].Certificates) == 0 {
		t.Fatalf("acme.json: %v", err)
	}
	block, _ := pem.Decode(doc["letsencrypt"].Certificates[0].Certificate)
	if block == nil {
		t.Fatal("acme.json: no PEM certificate")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}
