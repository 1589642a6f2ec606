package kube_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/engine/enginetest"
)

func TestDryRunDiff(t *testing.T) {
	e := newEnv(t)
	e.createCM(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "service-registry"}, Data: map[string]string{
		"services.json": `{   "immich": {     "subdomain": "photos",     "port": 80,     "public": true   } }`,
		"plain":         "one\ntwo\n",
	}})
	rv := e.cm("service-registry").ResourceVersion
	src := `
def publish(doc):
    doc["immich"]["public"] = False
    doc["grafana"] = {"subdomain": "grafana", "port": 3000}

kube.configmap.update_json("service-registry", "services.json", publish, namespace = ns)
kube.configmap.update("service-registry", lambda d: d | {"plain": "one\nTWO\n"}, namespace = ns)
kube.configmap.apply("cluster-info", {"cluster-name": "mynodeone"}, namespace = ns)
kube.configmap.delete("service-registry", namespace = ns)
`
	res, err := enginetest.Run(t, scriptFile(t, "dry.star", src), src, true, e.options())
	if err != nil {
		t.Fatal(err)
	}
	want := `would change: [cluster] configmap.update_json NS/service-registry[services.json]
    --- NS/service-registry[services.json]
    +++ NS/service-registry[services.json]
    @@ -1,7 +1,11 @@
     {
    +  "grafana": {
    +    "port": 3000,
    +    "subdomain": "grafana"
    +  },
       "immich": {
         "port": 80,
    -    "public": true,
    +    "public": false,
         "subdomain": "photos"
       }
     }
would change: [cluster] configmap.update NS/service-registry
    --- NS/service-registry[plain]
    +++ NS/service-registry[plain]
    @@ -1,2 +1,2 @@
     one
    -two
    +TWO
would change: [cluster] configmap.apply NS/cluster-info (new ConfigMap)
    --- NS/cluster-info[cluster-name]
    +++ NS/cluster-info[cluster-name]
    @@ -0,0 +1 @@
    +mynodeone
    \ No newline at end of file
would change: [cluster] configmap.delete NS/service-registry
    --- NS/service-registry[plain]
    +++ NS/service-registry[plain]
    @@ -1,2 +0,0 @@
    -one
    -two
    --- NS/service-registry[services.json]
    +++ NS/service-registry[services.json]
    @@ -1,7 +0,0 @@
    -{
    -  "immich": {
    -    "port": 80,
    -    "public": true,
    -    "subdomain": "photos"
    -  }
    -}
`
	got := regexp.MustCompile(`(?m)  \S+\.star:\d+:\d+ \S+$`).ReplaceAllString(res.Stderr, "")
	got = strings.ReplaceAll(got, e.ns, "NS")
	if got != want {
		t.Errorf("dry-run report:\n%s\nwant:\n%s", got, want)
	}
	if got := e.cm("service-registry").ResourceVersion; got != rv {
		t.Errorf("dry run wrote: resourceVersion %s → %s", rv, got)
	}
}

// scriptFile writes src to a file in a temporary directory and returns its
// path: sessions resolve the playbook on disk.
func scriptFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
