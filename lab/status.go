package lab

import (
	"strconv"
	"strings"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/internal/proc"
	"github.com/mno-sh/mno/lab/kubeapi"
)

// Status is what runs of a lab.
type Status struct {
	Nodes, NodesRunning int
	// API: kube-apiserver and etcd run.
	API bool
	// PerNode is, per node name, what runs in it besides sshd: "traefik",
	// "k3s agent", "demo service".
	PerNode map[string][]string
	// Running is, per node name, whether its sshd runs.
	Running map[string]bool
}

// Status looks at the lab's processes.
func (c *Cluster) Status() Status {
	s := Status{Nodes: len(c.Nodes), PerNode: map[string][]string{}, Running: map[string]bool{}}
	if api, err := kubeapi.Open(c.APIDir); err == nil {
		s.API = api.Running()
	}
	hl, err := c.Hosts()
	if err != nil {
		return s
	}
	for _, h := range hl.Running() {
		s.NodesRunning++
		s.Running[h.Name] = true
		for _, d := range []struct{ pidFile, what string }{
			{"/run/mno-lab-traefik.pid", "traefik"},
			{"/run/k3s-agent.pid", "k3s agent"},
		} {
			if pidAlive(h, d.pidFile) {
				s.PerNode[h.Name] = append(s.PerNode[h.Name], d.what)
			}
		}
	}
	if c.Demo.Proc.Alive() {
		s.PerNode[c.Demo.Node] = append(s.PerNode[c.Demo.Node], "demo service :"+strconv.Itoa(c.Demo.Port))
	}
	return s
}

// State names the lab's condition in one word: running, partial or stopped.
func (s Status) State() string {
	switch {
	case s.Nodes > 0 && s.NodesRunning == s.Nodes && s.API:
		return "running"
	case s.NodesRunning > 0 || s.API:
		return "partial"
	}
	return "stopped"
}

// pidAlive reports whether the pid file in h names a live process (the lab's
// nodes share this machine's PID namespace).
func pidAlive(h *hosts.Host, pidFile string) bool {
	data, err := h.ReadFile(pidFile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return false
	}
	ref, err := proc.RefOf(pid)
	return err == nil && ref.Alive()
}
