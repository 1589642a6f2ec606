package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/mno-sh/mno/deploy/rbac"
)

// k8sOptions are what `mno install kubernetes` renders the manifests from.
type k8sOptions struct {
	Namespace string
	Image     string
	// Identity and KnownHosts are the CP's SSH private key and known_hosts (Secret mno-ssh).
	Identity, KnownHosts []byte
	// Workspace maps a workspace-relative path (playbooks/x.star, roles/y.star) to its content
	// (ConfigMap mno-workspace); empty for the embedded playbooks only.
	Workspace map[string][]byte
}

// k8sObjects are mno's manifests for running `mno watch sync` inside the cluster, in apply
// order: the namespace, the ServiceAccount, the run records' namespace, mno's roles bound to it, the SSH identity, the
// workspace, and a Deployment of two replicas that elect a leader through the Lease.
func k8sObjects(o k8sOptions) ([]any, error) {
	roles, err := rbac.Load()
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"app.kubernetes.io/name": "mno", "app.kubernetes.io/managed-by": "mno"}
	meta := func(name, ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	tm := func(apiVersion, kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
	}
	crb, rbs := rbac.Bindings(roles, rbac.ServiceAccount(o.Namespace, "mno"))
	roles.ClusterRole.TypeMeta = tm("rbac.authorization.k8s.io/v1", "ClusterRole")
	var rbacObjs []any
	// The namespaces of mno's Roles that a cluster lacks (mno-history, the run records').
	for _, ns := range roles.Namespaces() {
		if ns != o.Namespace {
			rbacObjs = append(rbacObjs, rbac.NamespaceObject(ns))
		}
	}
	rbacObjs = append(rbacObjs, roles.ClusterRole)
	for _, r := range roles.Roles {
		r.TypeMeta = tm("rbac.authorization.k8s.io/v1", "Role")
		rbacObjs = append(rbacObjs, r)
	}
	rbacObjs = append(rbacObjs, crb)
	for _, rb := range rbs {
		rbacObjs = append(rbacObjs, rb)
	}

	ws := &corev1.ConfigMap{TypeMeta: tm("v1", "ConfigMap"), ObjectMeta: meta("mno-workspace", o.Namespace), Data: map[string]string{}}
	var items []corev1.KeyToPath
	paths := make([]string, 0, len(o.Workspace))
	for p := range o.Workspace {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		// ConfigMap keys allow no '/': the volume's items put each key back at its path.
		key := strings.ReplaceAll(p, "/", "__")
		ws.Data[key] = string(o.Workspace[p])
		items = append(items, corev1.KeyToPath{Key: key, Path: p})
	}

	replicas := int32(2)
	no, yes := false, true
	root := int64(0)
	readOnly := int32(0o400)
	tlsType := corev1.HostPathDirectory
	dep := &appsv1.Deployment{
		TypeMeta:   tm("apps/v1", "Deployment"),
		ObjectMeta: meta("mno-watch", o.Namespace),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "mno"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: "mno",
					// The client CA that signs laptop certificates is on the k3s servers.
					NodeSelector: map[string]string{"node-role.kubernetes.io/control-plane": "true"},
					Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
						Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
							LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "mno"}}}}}}},
					Containers: []corev1.Container{{
						Name:            "mno",
						Image:           o.Image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            []string{"watch", "--listen", ":9090", "sync"},
						WorkingDir:      "/workspace",
						Env: []corev1.EnvVar{
							{Name: "MNO_HOME", Value: "/var/lib/mno"},
							{Name: "MNO_IDENTITY", Value: "/etc/mno/ssh/id_ed25519"},
							{Name: "MNO_K3S_TLS_DIR", Value: "/var/lib/rancher/k3s/server/tls"},
						},
						Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}},
						LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromString("metrics")}}, PeriodSeconds: 30},
						SecurityContext: &corev1.SecurityContext{
							// Root to read k3s's client CA key (0600 root); no capabilities.
							RunAsUser: &root, AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "home", MountPath: "/var/lib/mno"},
							{Name: "ssh", MountPath: "/etc/mno/ssh", ReadOnly: true},
							{Name: "workspace", MountPath: "/workspace", ReadOnly: true},
							{Name: "k3s-tls", MountPath: "/var/lib/rancher/k3s/server/tls", ReadOnly: true},
							{Name: "tmp", MountPath: "/tmp"},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "home", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "ssh", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "mno-ssh", DefaultMode: &readOnly}}},
						{Name: "workspace", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "mno-workspace"}, Items: items}}},
						{Name: "k3s-tls", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
							Path: "/var/lib/rancher/k3s/server/tls", Type: &tlsType}}},
					},
				},
			},
		},
	}
	objs := []any{
		&corev1.Namespace{TypeMeta: tm("v1", "Namespace"), ObjectMeta: meta(o.Namespace, "")},
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta("mno", o.Namespace)},
	}
	objs = append(objs, rbacObjs...)
	return append(objs,
		&corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: meta("mno-ssh", o.Namespace), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"id_ed25519": o.Identity, "known_hosts": o.KnownHosts}},
		ws,
		dep,
	), nil
}

// renderManifests is the objects as one multi-document YAML file.
func renderManifests(objs []any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# mno inside the cluster: `mno install kubernetes` wrote this. It holds the control plane's\n" +
		"# SSH private key (Secret mno-ssh): keep it 0600 and out of version control.\n")
	for _, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// readWorkspace reads the .star files (and templates) under root's playbooks/ and roles/.
func readWorkspace(root string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, dir := range []string{"playbooks", "roles"} {
		base := filepath.Join(root, dir)
		if _, err := os.Stat(base); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = b
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeManifests renders the manifests for the CP's identity in home and the workspace at
// root ("" for none) into path, 0600.
func writeManifests(path, home, root, ns, image string) error {
	id, err := os.ReadFile(filepath.Join(home, "id_ed25519"))
	if err != nil {
		return fmt.Errorf("the control plane's SSH identity: %w (run `mno init` first)", err)
	}
	kh, err := os.ReadFile(filepath.Join(home, "known_hosts"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var ws map[string][]byte
	if root != "" {
		if ws, err = readWorkspace(root); err != nil {
			return err
		}
	}
	objs, err := k8sObjects(k8sOptions{Namespace: ns, Image: image, Identity: id, KnownHosts: kh, Workspace: ws})
	if err != nil {
		return err
	}
	data, err := renderManifests(objs)
	if err != nil {
		return err
	}
	tmp := path + ".mno-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
