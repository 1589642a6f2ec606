package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/mno-sh/mno/builtins/kube/kclient"
)

// agentConfig is the part of k3s's /etc/rancher/k3s/config.yaml the agent
// stand-in uses.
type agentConfig struct {
	Server    string   `yaml:"server"`
	Token     string   `yaml:"token"`
	NodeName  string   `yaml:"node-name"`
	NodeIP    string   `yaml:"node-ip"`
	NodeLabel []string `yaml:"node-label"`
}

// heartbeat is how often the agent refreshes the Node's Ready condition.
const heartbeat = 20 * time.Second

// RunAgent is the k3s agent stand-in (`mno lab agent`, which the lab's k3s
// installer installs as /usr/local/bin/k3s on workers). Like a kubelet it
// reads the agent configuration, registers its Node with the server named
// there, authenticating with the join token, reports it Ready and keeps the
// heartbeat until ctx ends. It runs inside the node, so the server URL and
// token add-worker wrote must really work from there. It registers once, as
// a kubelet does: a Node deleted afterwards stays deleted.
func RunAgent(ctx context.Context, configPath string, log io.Writer) error {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var cfg agentConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	if cfg.Server == "" || cfg.Token == "" || cfg.NodeName == "" {
		return fmt.Errorf("%s: server, token and node-name are required", configPath)
	}
	// The real agent checks the server's CA against the hash in a K10 token;
	// the stand-in trusts the lab network and checks the token only.
	cs, err := kclient.New(&rest.Config{Host: cfg.Server, BearerToken: cfg.Token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, Timeout: 10 * time.Second, UserAgent: "mno-lab-agent"})
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "k3s agent (mno lab stand-in): node %s, server %s\n", cfg.NodeName, cfg.Server)
	registered := false
	for delay := time.Second; ; {
		err := beat(ctx, cs, cfg, !registered)
		if err == nil {
			if !registered {
				fmt.Fprintf(log, "node %s registered and Ready\n", cfg.NodeName)
			}
			registered, delay = true, heartbeat
		} else {
			fmt.Fprintf(log, "%s: %v\n", time.Now().UTC().Format(time.RFC3339), err)
			delay = min(2*time.Second, heartbeat)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// beat creates the Node (when register) and sets it Ready with a fresh heartbeat.
func beat(ctx context.Context, cs *kclient.Client, cfg agentConfig, register bool) error {
	nodes := cs.Nodes()
	n, err := nodes.Get(ctx, cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && register {
		labels := map[string]string{"kubernetes.io/hostname": cfg.NodeName, "kubernetes.io/os": "linux",
			"kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "k3s"}
		for _, l := range cfg.NodeLabel {
			if k, v, ok := cutLabel(l); ok {
				labels[k] = v
			}
		}
		n, err = nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: cfg.NodeName, Labels: labels}}, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "mno lab agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	found := false
	for i, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				ready.LastTransitionTime = c.LastTransitionTime
			}
			n.Status.Conditions[i], found = ready, true
		}
	}
	if !found {
		n.Status.Conditions = append(n.Status.Conditions, ready)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: cfg.NodeName}}
	if cfg.NodeIP != "" {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: cfg.NodeIP})
	}
	n.Status.NodeInfo.KubeletVersion = "v1.28.5+k3s1 (mno lab agent)"
	n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture = "linux", "amd64"
	_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

func cutLabel(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
