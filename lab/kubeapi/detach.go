package kubeapi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// StateFile is where a detached server (see Options.Detached) records itself in its Dir.
const StateFile = "kubeapi.json"

// serverState is what [Open] needs to find a detached server and stop it.
type serverState struct {
	URL        string   `json:"url"`
	Kubeconfig string   `json:"kubeconfig"`
	APIServer  proc.Ref `json:"kube_apiserver"`
	Etcd       proc.Ref `json:"etcd"`
}

func (s *Server) persist() error {
	data, err := json.MarshalIndent(serverState{URL: s.URL, Kubeconfig: s.Kubeconfig,
		APIServer: s.apiserver.ref, Etcd: s.etcd.ref}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, StateFile), append(data, '\n'), 0o600)
}

// Open returns the detached server whose Dir is dir, from any process: its URL, Kubeconfig
// and Config are those of the admin, and [Server.Stop] stops its processes by PID. Its
// UserConfig and UserKubeconfig are not available (the CA key stays with its starter).
func Open(dir string) (*Server, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("kubeapi: %w", err)
	}
	var st serverState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("kubeapi: %s: %w", filepath.Join(dir, StateFile), err)
	}
	s := &Server{URL: st.URL, Kubeconfig: st.Kubeconfig, Dir: dir, detached: true,
		apiserver: &process{name: "kube-apiserver", log: filepath.Join(dir, "kube-apiserver.log"), ref: st.APIServer},
		etcd:      &process{name: "etcd", log: filepath.Join(dir, "etcd.log"), ref: st.Etcd}}
	if s.Config, err = clientcmd.BuildConfigFromFlags("", st.Kubeconfig); err != nil {
		return nil, fmt.Errorf("kubeapi: %w", err)
	}
	return s, nil
}

// Running reports whether both processes still run.
func (s *Server) Running() bool {
	return s.apiserver != nil && !s.apiserver.exited() && s.etcd != nil && !s.etcd.exited()
}
