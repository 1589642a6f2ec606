package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	floorspec "github.com/mno-sh/mno/bench/floor/spec"
)

// Tool is one way of doing the sync that the benchmark times.
type Tool interface {
	Name() string
	// Command is the command one run executes, for the report.
	Command() string
	// Run syncs the nodes once.
	Run() (Sample, error)
}

// Mno runs `mno run sync` with the real binary as a subprocess.
type Mno struct {
	// Label names the tool in the report ("mno" unless comparing builds).
	Label                          string
	Wrapper, Bin, Home, Kubeconfig string // Wrapper: bench/rusage
	// Args follow `mno run sync`.
	Args []string
	// Env is added to the environment (e.g. MNO_CPUPROFILE for profiling
	// builds); nil for none.
	Env []string
}

func (m *Mno) Name() string {
	if m.Label != "" {
		return m.Label
	}
	return "mno"
}

func (m *Mno) Command() string {
	return strings.TrimSpace("MNO_HOME=" + m.Home + " KUBECONFIG=" + m.Kubeconfig + " " + m.Bin + " run sync " + strings.Join(m.Args, " "))
}

func (m *Mno) Run() (Sample, error) {
	cmd := exec.Command(m.Bin, append([]string{"run", "sync"}, m.Args...)...)
	cmd.Env = append(os.Environ(), "MNO_HOME="+m.Home, "KUBECONFIG="+m.Kubeconfig)
	cmd.Env = append(cmd.Env, m.Env...)
	s, _, err := Timed(m.Wrapper, cmd)
	return s, err
}

// Floor runs the floor program (bench/floor).
type Floor struct {
	Wrapper, Bin, Spec string
}

func (f *Floor) Name() string    { return "floor" }
func (f *Floor) Command() string { return f.Bin + " " + f.Spec }
func (f *Floor) Run() (Sample, error) {
	s, _, err := Timed(f.Wrapper, exec.Command(f.Bin, f.Spec))
	return s, err
}

// WriteFloorSpec writes the floor's input for nodes to file.
func WriteFloorSpec(file, identity string, quickAck bool, nodes []Node, want *Expected) error {
	spec := floorspec.Spec{Identity: identity, QuickAck: quickAck}
	for _, n := range nodes {
		h := floorspec.Host{Name: n.Name, Addr: n.Host.Endpoint(), User: n.User, HostKey: n.HostKey, Path: n.Path(), Mode: 0o644}
		if n.Kind == "vps" {
			c := want.Files[n.Name]
			h.Content, h.TmpDir = &c, RoutesTmpDir
		} else {
			h.Block, h.BlockBegin, h.BlockEnd, h.TmpDir = want.Block, want.Begin, want.End, HostsTmpDir
		}
		spec.Hosts = append(spec.Hosts, h)
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}

// Ansible runs an equivalent playbook with ansible-playbook: the routes file
// with copy on VPSes, the /etc/hosts block with blockinfile on laptops, the
// content computed beforehand by mno's roles and given as host variables.
type Ansible struct {
	Dir string // holds ansible.cfg, inventory.json, sync.yml, known_hosts
	// ControlDir is the parent of a fresh ControlPath directory per run, so
	// no run reuses another's SSH connections.
	ControlDir string
	Wrapper    string // bench/rusage
	runs       int
}

func (a *Ansible) Name() string { return "ansible" }

func (a *Ansible) Command() string {
	return "ANSIBLE_CONFIG=" + filepath.Join(a.Dir, "ansible.cfg") + " ansible-playbook " + filepath.Join(a.Dir, "sync.yml")
}

func (a *Ansible) Run() (Sample, error) {
	a.runs++
	cp := filepath.Join(a.ControlDir, strconv.Itoa(a.runs))
	if err := os.MkdirAll(cp, 0o700); err != nil {
		return Sample{}, err
	}
	defer closeMasters(cp)
	cmd := exec.Command("ansible-playbook", filepath.Join(a.Dir, "sync.yml"))
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(a.Dir, "ansible.cfg"), "ANSIBLE_SSH_CONTROL_PATH_DIR="+cp,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(a.Dir, "tmp"), "ANSIBLE_NOCOLOR=1")
	cmd.Dir = a.Dir
	s, out, err := Timed(a.Wrapper, cmd)
	if err == nil && !strings.Contains(string(out), "failed=0") {
		err = fmt.Errorf("ansible-playbook: no failed=0 in its recap:\n%s", tail(string(out), 30))
	}
	return s, err
}

// closeMasters ends the ControlPersist masters a run left (the ssh processes
// ansible started), so they neither linger on the hosts nor load the machine.
func closeMasters(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		exec.Command("ssh", "-o", "ControlPath="+filepath.Join(dir, e.Name()), "-O", "exit", "bench").Run()
	}
	os.RemoveAll(dir)
}

// ansiblePlaybook is the equivalent of sync for the benchmark's files.
const ansiblePlaybook = `# The benchmark's equivalent of ` + "`mno run sync`" + `: the same files, the same content.
- hosts: all
  gather_facts: false
  tasks:
    - name: Traefik routes
      when: kind == "vps"
      ansible.builtin.copy:
        content: "{{ routes }}"
        dest: ` + RoutesPath + `
        mode: "0644"
    - name: /etc/hosts block
      when: kind == "laptop"
      become: "{{ ansible_user != 'root' }}"
      ansible.builtin.blockinfile:
        path: ` + HostsPath + `
        block: "{{ hosts_block }}"
        marker: "{mark}"
        marker_begin: "{{ hosts_begin }}"
        marker_end: "{{ hosts_end }}"
        create: false
`

// WriteAnsible writes the Ansible project for nodes into dir.
func WriteAnsible(dir, identity string, forks int, nodes []Node, want *Expected) (*Ansible, error) {
	for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	var known []string
	hostsMap := map[string]any{}
	for _, n := range nodes {
		known = append(known, n.KnownHostsLine)
		v := map[string]any{"ansible_host": n.Addr, "ansible_port": n.Port, "ansible_user": n.User, "kind": n.Kind}
		if n.Kind == "vps" {
			v["routes"] = want.Files[n.Name]
		} else {
			// blockinfile adds the markers and the final newline itself.
			inner := strings.TrimPrefix(want.Block, want.Begin+"\n")
			inner = strings.TrimSuffix(inner, want.End+"\n")
			v["hosts_block"] = strings.TrimSuffix(inner, "\n")
			v["hosts_begin"], v["hosts_end"] = want.Begin, want.End
		}
		hostsMap[n.Name] = v
	}
	inv := map[string]any{"all": map[string]any{"hosts": hostsMap}}
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return nil, err
	}
	kh := filepath.Join(dir, "known_hosts")
	cfg := fmt.Sprintf(`[defaults]
inventory = %s
forks = %d
host_key_checking = True
private_key_file = %s
interpreter_python = /usr/bin/python3
retry_files_enabled = False
timeout = 10

[ssh_connection]
pipelining = True
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
`, filepath.Join(dir, "inventory.json"), forks, identity, kh)
	files := map[string]string{
		"inventory.json": string(b),
		"known_hosts":    strings.Join(known, "\n") + "\n",
		"ansible.cfg":    cfg,
		"sync.yml":       ansiblePlaybook,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	return &Ansible{Dir: dir, ControlDir: filepath.Join(dir, "cp")}, nil
}

// Versions reports the tools' versions for the report.
func Versions() map[string]string {
	v := map[string]string{}
	run := func(key string, args ...string) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			v[key] = "unavailable"
			return
		}
		v[key] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	run("go", "go", "version")
	run("openssh", "ssh", "-V")
	run("ansible", "ansible", "--version")
	run("kernel", "uname", "-sr")
	run("python", "python3", "--version")
	return v
}
