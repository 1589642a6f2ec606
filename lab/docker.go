package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// DockerDir holds, inside a lab node, the containers of the docker stand-in:
// one directory per container name with the compose file it came from, its
// generated Traefik configuration, its log and its pid.
const DockerDir = "/run/mno-lab-docker"

// Docker is the docker stand-in of lab nodes (`mno lab docker`, which the
// node's docker shim runs, as the caller, inside the node). A container is a
// real Traefik process in the node, made from a compose service whose static
// configuration is mounted at /etc/traefik/traefik.yml: the stand-in
// rewrites that configuration as docker's mounts and published ports would
// make it look from the node — container paths become the mounted host
// paths, entry point ports the published host ports — and, since there is no
// docker socket, leaves out the docker provider (MyNodeOne's traefik.yml has
// one). So mno's compose project (/opt/mno/traefik) and MyNodeOne's
// (~/traefik/docker-compose.yml, container "traefik") both run for real, side
// by side when their ports differ. Commands: compose [-f FILE] [-p NAME]
// up|down|start|stop|restart|ps|version; ps [-a] [-q] [--filter name=RE]
// [--filter status=running]; start|stop|rm [-f] NAME…; network …;
// version. It returns the exit code.
func Docker(args []string, traefikBin string, stdout, stderr io.Writer) int {
	d := &docker{traefik: traefikBin, out: stdout, err: stderr}
	if err := d.run(args); err != nil {
		fmt.Fprintf(stderr, "docker (mno lab stand-in): %v\n", err)
		return 1
	}
	return 0
}

type docker struct {
	traefik  string
	out, err io.Writer
}

func (d *docker) run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: docker COMMAND")
	}
	switch args[0] {
	case "compose":
		return d.compose(args[1:])
	case "ps":
		return d.ps(args[1:])
	case "start", "stop", "rm":
		force := false
		var names []string
		for _, a := range args[1:] {
			switch {
			case a == "-f" || a == "--force":
				force = true
			case strings.HasPrefix(a, "-"):
			default:
				names = append(names, a)
			}
		}
		if len(names) == 0 {
			return fmt.Errorf("%s: no container named", args[0])
		}
		for _, n := range names {
			c, err := openContainer(n)
			if err != nil {
				return err
			}
			switch args[0] {
			case "start":
				err = d.start(c)
			case "stop":
				err = c.stop()
			case "rm":
				if c.running() && !force {
					return fmt.Errorf("cannot remove container %s: it is running (stop it first, or rm -f)", n)
				}
				err = c.remove()
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(d.out, n)
		}
		return nil
	case "network":
		return nil // one network namespace per node: nothing to create
	case "version", "--version":
		fmt.Fprintln(d.out, "Docker version 24.0.7 (mno lab stand-in)")
		return nil
	}
	return fmt.Errorf("%s: not supported by the lab's stand-in", args[0])
}

// composeFile is the part of a compose file the stand-in reads.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	ContainerName string   `yaml:"container_name"`
	Image         string   `yaml:"image"`
	Ports         []string `yaml:"ports"`
	Volumes       []string `yaml:"volumes"`
}

func (d *docker) compose(args []string) error {
	file, project, action := "", "", ""
	var services []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-f" || a == "--file" || a == "-p" || a == "--project-name") && i+1 < len(args):
			if a == "-f" || a == "--file" {
				file = args[i+1]
			} else {
				project = args[i+1]
			}
			i++
		case a == "version":
			fmt.Fprintln(d.out, "Docker Compose version v2.24.6 (mno lab stand-in)")
			return nil
		case strings.HasPrefix(a, "-"):
		case action == "":
			action = a
		default:
			services = append(services, a)
		}
	}
	if file == "" {
		wd, _ := os.Getwd()
		for _, n := range []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"} {
			if _, err := os.Stat(filepath.Join(wd, n)); err == nil {
				file = filepath.Join(wd, n)
				break
			}
		}
		if file == "" {
			return errors.New("no compose file here (compose.yaml, docker-compose.yml) and no -f FILE")
		}
	}
	file, _ = filepath.Abs(file)
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	if project == "" {
		project = cf.Name
	}
	if project == "" {
		project = filepath.Base(filepath.Dir(file))
	}
	names := make([]string, 0, len(cf.Services))
	for s := range cf.Services {
		if len(services) == 0 || contains(services, s) {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	for _, s := range names {
		svc := cf.Services[s]
		cname := svc.ContainerName
		if cname == "" {
			cname = project + "-" + s + "-1"
		}
		c := &container{name: cname, dir: filepath.Join(DockerDir, cname)}
		exists := c.exists()
		switch action {
		case "up":
			if exists && c.running() {
				continue
			}
			if err := c.create(file, s); err != nil {
				return err
			}
			if err := d.start(c); err != nil {
				return err
			}
		case "start":
			if exists {
				if err := d.start(c); err != nil {
					return err
				}
			}
		case "restart":
			if exists {
				if err := c.stop(); err != nil {
					return err
				}
				if err := d.start(c); err != nil {
					return err
				}
			}
		case "stop", "down":
			if exists {
				if err := c.stop(); err != nil {
					return err
				}
				if action == "down" {
					if err := c.remove(); err != nil {
						return err
					}
				}
			}
		case "ps":
			if exists && c.running() {
				fmt.Fprintf(d.out, "%s   %s   running\n", cname, s)
			}
		default:
			return fmt.Errorf("compose %s: not supported by the lab's stand-in", action)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *docker) ps(args []string) error {
	all, quiet := false, false
	var nameRE *regexp.Regexp
	runningOnly := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-a", "--all":
			all = true
		case "-q", "--quiet":
			quiet = true
		case "-aq", "-qa":
			all, quiet = true, true
		case "--filter", "-f":
			if i+1 >= len(args) {
				return errors.New("ps: --filter needs a value")
			}
			i++
			k, v, _ := strings.Cut(args[i], "=")
			switch k {
			case "name":
				re, err := regexp.Compile(v)
				if err != nil {
					return fmt.Errorf("ps: --filter name=%s: %v", v, err)
				}
				nameRE = re
			case "status":
				runningOnly = v == "running"
				all = all || v != "running"
			}
		}
	}
	ents, _ := os.ReadDir(DockerDir)
	for _, e := range ents {
		c := &container{name: e.Name(), dir: filepath.Join(DockerDir, e.Name())}
		if !c.exists() || (nameRE != nil && !nameRE.MatchString(c.name)) {
			continue
		}
		running := c.running()
		if (!all || runningOnly) && !running {
			continue
		}
		if quiet {
			fmt.Fprintln(d.out, c.id())
		} else {
			status := "Exited"
			if running {
				status = "Up"
			}
			fmt.Fprintf(d.out, "%s   traefik   %s   %s\n", c.id(), status, c.name)
		}
	}
	return nil
}

// container is one container of the stand-in: a directory in DockerDir.
type container struct{ name, dir string }

func openContainer(name string) (*container, error) {
	c := &container{name: name, dir: filepath.Join(DockerDir, name)}
	if strings.ContainsAny(name, "/\x00") || !c.exists() {
		return nil, fmt.Errorf("no such container: %s", name)
	}
	return c, nil
}

func (c *container) exists() bool {
	_, err := os.Stat(filepath.Join(c.dir, "compose"))
	return err == nil
}

// id is a stable 12-hex-digit id from the name, as docker ps -q prints.
func (c *container) id() string {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(c.name) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return fmt.Sprintf("%012x", h&0xffffffffffff)
}

func (c *container) pid() int {
	data, err := os.ReadFile(filepath.Join(c.dir, "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

func (c *container) running() bool {
	pid := c.pid()
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// create records the compose file and service the container runs.
func (c *container) create(file, service string) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.dir, "compose"), []byte(file+"\n"+service+"\n"), 0o644)
}

func (c *container) stop() error {
	pid := c.pid()
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		// Like docker stop: SIGTERM (Traefik finishes what is in flight and
		// closes its listeners), SIGKILL after 10 s.
		syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return os.Remove(filepath.Join(c.dir, "pid"))
}

func (c *container) remove() error {
	if c.running() {
		if err := c.stop(); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.RemoveAll(c.dir)
}

// start runs Traefik on the container's configuration and returns once it
// listens on its published ports, as a container that is up.
func (d *docker) start(c *container) error {
	if c.running() {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "compose"))
	if err != nil {
		return err
	}
	file, service, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	cfgPath, ports, err := c.config(file, service)
	if err != nil {
		return err
	}
	if err := d.awaitTraefik(); err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, "log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(d.traefik, "--configFile="+cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	if err := os.WriteFile(filepath.Join(c.dir, "pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range ports {
		for {
			if !c.running() {
				return fmt.Errorf("container %s: traefik exited at once; the end of %s:\n%s", c.name, logPath, tail(logPath, 20))
			}
			conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", p), 200*time.Millisecond)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("container %s: traefik does not listen on :%s after 10s; the end of %s:\n%s", c.name, p, logPath, tail(logPath, 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitRoutes(cfgPath, ports, 5*time.Second)
	fmt.Fprintf(d.err, " Container %s  Started\n", c.name)
	return nil
}

var hostRule = regexp.MustCompile("Host\\(`([^`]+)`\\)")

// waitRoutes waits (up to max) until Traefik, which listens before its file
// provider has applied the routes, answers the first host its dynamic
// configuration routes with anything but its catch-all 404 over HTTPS — so
// that a request sent right after `docker compose up -d` (a curl pasted from
// the README) finds the routes, as it would once a real container is up.
func waitRoutes(cfgPath string, ports []string, max time.Duration) {
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return
	}
	var cfg struct {
		Providers struct {
			File struct{ Directory, Filename string }
		}
	}
	if yaml.Unmarshal(raw, &cfg) != nil {
		return
	}
	files := []string{cfg.Providers.File.Filename}
	if dir := cfg.Providers.File.Directory; dir != "" {
		m, _ := filepath.Glob(filepath.Join(dir, "*.y*ml"))
		files = append(files, m...)
	}
	host := ""
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && f != "" {
			if m := hostRule.FindSubmatch(data); m != nil {
				host = string(m[1])
				break
			}
		}
	}
	if host == "" {
		return
	}
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		for _, p := range ports {
			c := &http.Client{Timeout: time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}}}
			req, _ := http.NewRequest("GET", "https://127.0.0.1:"+p+"/", nil)
			req.Host = host
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(file string, n int) string {
	data, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// mount is one volume: a host path seen at a container path.
type mount struct{ host, ctr string }

// config writes the Traefik static configuration of service as the node sees
// it and returns its path and the published host ports.
func (c *container) config(file, service string) (string, []string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", nil, err
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		return "", nil, fmt.Errorf("%s: %v", file, err)
	}
	svc, ok := cf.Services[service]
	if !ok {
		return "", nil, fmt.Errorf("%s: no service %s", file, service)
	}
	var mounts []mount
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		h := parts[0]
		if !filepath.IsAbs(h) {
			h = filepath.Join(filepath.Dir(file), h)
		}
		mounts = append(mounts, mount{host: filepath.Clean(h), ctr: path.Clean(parts[1])})
	}
	toHost := func(p string) (string, bool) {
		best := -1
		for i, m := range mounts {
			if (p == m.ctr || strings.HasPrefix(p, m.ctr+"/")) && (best < 0 || len(m.ctr) > len(mounts[best].ctr)) {
				best = i
			}
		}
		if best < 0 {
			return "", false
		}
		return mounts[best].host + strings.TrimPrefix(p, mounts[best].ctr), true
	}
	static, ok := toHost("/etc/traefik/traefik.yml")
	if !ok {
		// Without the mount, the node's own (what the stand-in always ran).
		static = "/etc/traefik/traefik.yml"
	}
	raw, err := os.ReadFile(static)
	if err != nil {
		return "", nil, err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return "", nil, fmt.Errorf("%s: %v", static, err)
	}
	published := map[string]string{} // container port → host port
	for _, p := range svc.Ports {
		parts := strings.Split(strings.Trim(p, `"`), ":")
		if len(parts) >= 2 {
			published[parts[len(parts)-1]] = parts[len(parts)-2]
		}
	}
	var ports []string
	if eps, ok := cfg["entryPoints"].(map[string]any); ok {
		for _, v := range eps {
			ep, ok := v.(map[string]any)
			if !ok {
				continue
			}
			addr, _ := ep["address"].(string)
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				continue
			}
			if len(svc.Ports) == 0 {
				ports = append(ports, port) // no ports: the node's network, as with network_mode: host
			} else if hp, ok := published[port]; ok {
				ep["address"] = net.JoinHostPort(host, hp)
				ports = append(ports, hp)
			} else {
				// Not published: reachable inside the container only.
				ep["address"] = "127.0.0.1:0"
			}
		}
	}
	if provs, ok := cfg["providers"].(map[string]any); ok {
		delete(provs, "docker") // no docker socket in a lab node
		if f, ok := provs["file"].(map[string]any); ok {
			for _, k := range []string{"directory", "filename"} {
				if p, ok := f[k].(string); ok {
					if h, ok := toHost(p); ok {
						f[k] = h
					}
				}
			}
		}
	}
	if rs, ok := cfg["certificatesResolvers"].(map[string]any); ok {
		for _, v := range rs {
			if r, ok := v.(map[string]any); ok {
				if acme, ok := r["acme"].(map[string]any); ok {
					if p, ok := acme["storage"].(string); ok {
						if h, ok := toHost(p); ok {
							acme["storage"] = h
						}
					}
				}
			}
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(c.dir, "traefik.yml")
	sort.Strings(ports)
	return p, ports, os.WriteFile(p, out, 0o600)
}

// awaitTraefik waits, while `mno lab up`'s background build of Traefik still
// runs, for the binary (in <cache>/bin, whose status is in <cache>/status:
// both bound into the node), printing the build's progress; it fails at once
// when the build needs longer than a playbook's command may wait.
func (d *docker) awaitTraefik() error {
	if _, err := os.Stat(d.traefik); err == nil {
		return nil
	}
	cache := filepath.Dir(filepath.Dir(d.traefik))
	return WaitForTool(context.Background(), cache, filepath.Base(d.traefik), d.traefik, prefixLines(d.err, "mno lab: "), TraefikWaitLimit)
}

// prefixLines starts every line written to w with p.
func prefixLines(w io.Writer, p string) io.Writer { return &linePrefixer{w: w, p: p} }

type linePrefixer struct {
	w       io.Writer
	p       string
	midLine bool
}

func (l *linePrefixer) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !l.midLine {
			out = append(out, l.p...)
		}
		out = append(out, c)
		l.midLine = c != '\n'
	}
	if _, err := l.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
