package kubeapi_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno/lab/kubeapi"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

func TestMain(m *testing.M) { kubeapitest.Main(m) }

func TestServerVersion(t *testing.T) {
	srv := kubeapitest.Server(t)
	v, err := kubeapitest.Client(t, srv).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	// kubectl refuses a server whose major/minor it cannot parse.
	if v.GitVersion != kubeapi.KubernetesVersion || v.Major != "1" || v.Minor != "37" {
		t.Errorf("version = %q major %q minor %q, want %s 1 37", v.GitVersion, v.Major, v.Minor, kubeapi.KubernetesVersion)
	}
}

func TestConfigMapCreateGetUpdate(t *testing.T) {
	srv := kubeapitest.Server(t)
	client := kubeapitest.Client(t, srv)
	tests := []struct {
		name      string
		namespace string
	}{
		{"kube-system", "kube-system"},
		{"fresh namespace", kubeapitest.Namespace(t, srv)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cms := client.CoreV1().ConfigMaps(tt.namespace)
			created, err := cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "mno-test-"}, // unique across -count
				Data:       map[string]string{"k": "v1"},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			name := created.Name
			cm, err := cms.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["k"] != "v1" {
				t.Fatalf("after create: data %v, want k=v1", cm.Data)
			}
			cm.Data["k"] = "v2"
			if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			cm, err = cms.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["k"] != "v2" {
				t.Errorf("after update: data %v, want k=v2", cm.Data)
			}
		})
	}
}

func TestWatchSeesChanges(t *testing.T) {
	srv := kubeapitest.Server(t)
	client := kubeapitest.Client(t, srv)
	ns := kubeapitest.Namespace(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "watched"},
		Data:       map[string]string{"k": "v1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, w, watch.Added, "v1")
	cm.Data["k"] = "v2"
	if _, err := client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, w, watch.Modified, "v2")
}

func expect(t *testing.T, ctx context.Context, w watch.Interface, typ watch.EventType, value string) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch closed before a %s event", typ)
		}
		cm, _ := ev.Object.(*corev1.ConfigMap)
		if ev.Type != typ || cm == nil || cm.Name != "watched" || cm.Data["k"] != value {
			t.Fatalf("event %s %#v, want %s of watched with k=%s", ev.Type, ev.Object, typ, value)
		}
	case <-ctx.Done():
		t.Fatalf("no %s event: %v", typ, ctx.Err())
	}
}

func TestUnprivilegedUserIsForbiddenUntilGranted(t *testing.T) {
	srv := kubeapitest.Server(t)
	admin := kubeapitest.Client(t, srv)
	ns := kubeapitest.Namespace(t, srv)
	ctx := context.Background()

	path, err := srv.UserKubeconfig("alice", "developers")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("alice lists ConfigMaps: err = %v, want Forbidden", err)
	}

	// The same credentials work once RBAC allows it, so the refusal above was authorization,
	// not a broken certificate; granting the group proves groups reach the server.
	if err := grantConfigMapReader(ctx, admin, ns, "developers"); err != nil {
		t.Fatal(err)
	}
	// The authorizer sees RBAC objects through an informer, so the grant lands a moment later.
	deadline, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsForbidden(err) || deadline.Err() != nil {
			t.Fatalf("alice lists ConfigMaps after the RoleBinding: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := alice.CoreV1().ConfigMaps("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice lists kube-system ConfigMaps: err = %v, want Forbidden", err)
	}
}

func TestAdminKubeconfig(t *testing.T) {
	srv := kubeapitest.Server(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"default", "kube-system", "kube-public"} {
		if _, err := client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s: %v", ns, err)
		}
	}
}
