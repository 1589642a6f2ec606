package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	xssh "golang.org/x/crypto/ssh"
	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/runctx"
)

// Fleet is n in-process SSH servers (x/crypto/ssh with a pkg/sftp server on
// an in-memory filesystem), each on its own loopback address, for scale runs
// that real sshd hosts cannot reach on two cores. They count what clients
// ask of them.
type Fleet struct {
	Servers []*Server
	wg      sync.WaitGroup
}

// Server is one in-process SSH host.
type Server struct {
	Name    string
	Addr    string // 127.x.y.z
	Port    int
	HostKey string // "ssh-ed25519 AAAA…"
	ln      net.Listener
	cfg     *xssh.ServerConfig
	fs      *memFS
	fleet   *Fleet

	Active   atomic.Int64 // open connections
	Conns    atomic.Int64 // connections accepted
	Sessions atomic.Int64 // session channels
	Execs    atomic.Int64 // exec requests (refused: these hosts only speak SFTP)
	SFTPReqs atomic.Int64 // SFTP requests (packets from the client)
	mu       sync.Mutex
	byType   map[byte]int64
}

// StartFleet starts n servers that accept the client key authorized.
func StartFleet(n int, authorized xssh.PublicKey) (*Fleet, error) {
	f := &Fleet{}
	for i := range n {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		signer, err := xssh.NewSignerFromKey(priv)
		if err != nil {
			return nil, err
		}
		cfg := &xssh.ServerConfig{PublicKeyCallback: func(_ xssh.ConnMetadata, k xssh.PublicKey) (*xssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		}}
		cfg.AddHostKey(signer)
		addr := fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
		ln, err := net.Listen("tcp", addr+":0")
		if err != nil {
			f.Close()
			return nil, err
		}
		s := &Server{Addr: addr, Port: ln.Addr().(*net.TCPAddr).Port, ln: ln, cfg: cfg, fs: newMemFS(), fleet: f,
			HostKey: strings.TrimSpace(string(xssh.MarshalAuthorizedKey(signer.PublicKey()))), byType: map[byte]int64{}}
		f.Servers = append(f.Servers, s)
		f.wg.Go(s.serve)
	}
	return f, nil
}

// Close stops accepting; open connections end with their clients.
func (f *Fleet) Close() {
	for _, s := range f.Servers {
		s.ln.Close()
	}
	f.wg.Wait()
}

// Active is the number of connections open on every server together.
func (f *Fleet) Active() int64 {
	var n int64
	for _, s := range f.Servers {
		n += s.Active.Load()
	}
	return n
}

// Counts sums the servers' counters: connections, sessions, execs, SFTP
// requests, and SFTP requests by type.
func (f *Fleet) Counts() (conns, sessions, execs, reqs int64, byType map[string]int64) {
	byType = map[string]int64{}
	for _, s := range f.Servers {
		conns += s.Conns.Load()
		sessions += s.Sessions.Load()
		execs += s.Execs.Load()
		reqs += s.SFTPReqs.Load()
		s.mu.Lock()
		for t, n := range s.byType {
			byType[sftpTypeName(t)] += n
		}
		s.mu.Unlock()
	}
	return
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.Conns.Add(1)
		s.Active.Add(1)
		s.fleet.wg.Go(func() {
			defer s.Active.Add(-1)
			s.handle(c)
		})
	}
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	sc, chans, reqs, err := xssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go xssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(xssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.Sessions.Add(1)
		wg.Go(func() { s.session(ch, creqs) })
	}
	wg.Wait()
}

func (s *Server) session(ch xssh.Channel, reqs <-chan *xssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "subsystem":
			if len(req.Payload) < 4 || string(req.Payload[4:]) != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go xssh.DiscardRequests(reqs)
			srv := sftp.NewRequestServer(&countingRW{Channel: ch, s: s}, s.fs.handlers())
			srv.Serve()
			srv.Close()
			return
		case "exec":
			s.Execs.Add(1)
			req.Reply(true, nil)
			fmt.Fprintln(ch.Stderr(), "this test host only speaks SFTP")
			ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 127))
			return
		default:
			req.Reply(req.Type == "env", nil)
		}
	}
}

// countingRW counts the SFTP packets a client sends.
type countingRW struct {
	xssh.Channel
	s    *Server
	head []byte // partial length+type header
	skip uint32 // bytes of the current packet still to pass
}

func (c *countingRW) Read(p []byte) (int, error) {
	n, err := c.Channel.Read(p)
	b := p[:n]
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(uint32(len(b)), c.skip)
			b, c.skip = b[k:], c.skip-k
			continue
		}
		need := 5 - len(c.head)
		k := min(need, len(b))
		c.head, b = append(c.head, b[:k]...), b[k:]
		if len(c.head) == 5 {
			c.s.SFTPReqs.Add(1)
			c.s.mu.Lock()
			c.s.byType[c.head[4]]++
			c.s.mu.Unlock()
			c.skip = binary.BigEndian.Uint32(c.head) - 1
			c.head = c.head[:0]
		}
	}
	return n, err
}

func sftpTypeName(t byte) string {
	names := map[byte]string{1: "init", 3: "open", 4: "close", 5: "read", 6: "write", 7: "lstat", 8: "fstat", 9: "setstat",
		10: "fsetstat", 11: "opendir", 12: "readdir", 13: "remove", 14: "mkdir", 15: "rmdir", 16: "realpath", 17: "stat",
		18: "rename", 19: "readlink", 20: "symlink", 200: "extended"}
	if s, ok := names[t]; ok {
		return s
	}
	return strconv.Itoa(int(t))
}

// seed gives every server the files an earlier sync left (StaleHosts,
// StaleRoutes, mno's staging directories) in the directories the add
// playbooks make.
func (f *Fleet) seed(signer xssh.Signer, nodes []Node) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.Servers))
	sem := make(chan struct{}, 32)
	for i, s := range f.Servers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = s.seed(signer, nodes[i].Name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) seed(signer xssh.Signer, name string) error {
	pin, _, _, _, _ := xssh.ParseAuthorizedKey([]byte(s.HostKey))
	c, err := xssh.Dial("tcp", net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)), &xssh.ClientConfig{
		User: "root", Auth: []xssh.AuthMethod{xssh.PublicKeys(signer)}, HostKeyCallback: xssh.FixedHostKey(pin)})
	if err != nil {
		return err
	}
	defer c.Close()
	cl, err := sftp.NewClient(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	// The staging directories mno's earlier writes left.
	for _, d := range []string{"/etc/traefik/dynamic", "/etc/traefik/.mno-staging", "/.mno-staging"} {
		if err := cl.MkdirAll(d); err != nil {
			return err
		}
	}
	for p, content := range map[string]string{HostsPath: StaleHosts(name), RoutesPath: StaleRoutes} {
		w, err := cl.Create(p)
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(content)); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}

// ScaleResult is what a scale run measured.
type ScaleResult struct {
	N                              int
	First, Second                  time.Duration
	ExitFirst, ExitSecond          int
	GoroutinesBase, GoroutinesPeak int
	GoroutinesAfter                int
	FDsBase, FDsAfter              int
	ActiveAfter                    int64
	HeapBase, HeapPeak, HeapAfter  uint64 // HeapInuse
	RSSBase, RSSPeak, RSSAfter     int64  // KiB
	PerHostFirst, PerHostSecond    perHost
	Leak                           string // "" when nothing SSH leaked
	// SSHGoroutinesAfter are goroutines in x/crypto/ssh, pkg/sftp or
	// builtins/ssh after the run (0: nothing of the SSH side outlived it);
	// KubeConnsBase/After count HTTP/2 connections to the API server.
	SSHGoroutinesAfter                     int
	KubeConnsBase, KubeConnsAfter          int
	ChangedFirst, ChangedSecond, TargetsOK int
}

type perHost struct {
	Conns, Sessions, Execs, Reqs float64
	ByType                       map[string]float64
}

// RunScale syncs n in-process hosts twice through the engine (as `mno run
// sync` does, in this process) and reports memory and goroutines before,
// during and after, and whether anything outlived the run.
func RunScale(ctx context.Context, n int, dir, kubeconfig string, client kubernetes.Interface) (*ScaleResult, error) {
	idFile, _, signer, err := Identity(dir)
	if err != nil {
		return nil, err
	}
	fleet, err := StartFleet(n, signer.PublicKey())
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	var nodes []Node
	vps := 0
	for i, s := range fleet.Servers {
		nd := Node{Addr: s.Addr, Port: s.Port, HostKey: s.HostKey, User: "root"}
		if i%2 == 0 {
			nd.Name, nd.Kind, nd.Domain = fmt.Sprintf("vps-%d", i/2+1), "vps", Domains[vps%len(Domains)]
			vps++
		} else {
			nd.Name, nd.Kind = fmt.Sprintf("laptop-%d", i/2+1), "laptop"
		}
		nodes = append(nodes, nd)
	}
	if err := fleet.seed(signer, nodes); err != nil {
		return nil, fmt.Errorf("seeding the hosts: %w", err)
	}
	if err := WriteCluster(ctx, client, nodes); err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "workspace") // empty: the embedded playbooks and roles
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	// The engine's Kubernetes client keeps its connection to the API server
	// in client-go's transport cache, shared by every run of the process:
	// make it before the baseline, with the same computation of the files
	// checkFleet compares with.
	want, err := ComputeExpected(ctx, kubeconfig, dir)
	if err != nil {
		return nil, err
	}
	res := &ScaleResult{N: n}
	settle()
	res.GoroutinesBase, res.FDsBase = runtime.NumGoroutine(), countFDs()
	_, res.KubeConnsBase = goroutineKinds()
	res.HeapBase, res.RSSBase = heapInuse(), rssKB()

	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			res.GoroutinesPeak = max(res.GoroutinesPeak, runtime.NumGoroutine())
			if h := heapInuse(); h > res.HeapPeak {
				res.HeapPeak = h
				if prof := os.Getenv("BENCH_HEAPPROFILE"); prof != "" {
					if f, err := os.Create(prof); err == nil {
						pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}
			}
			res.RSSPeak = max(res.RSSPeak, rssKB())
		}
	})
	run := func() (time.Duration, int, int, perHost, error) {
		c0, s0, e0, r0, t0 := fleet.Counts()
		var stderr bytes.Buffer
		start := time.Now()
		out := engine.Run(ctx, engine.Options{
			Playbook: "sync", Root: root, Embedded: mno.Files,
			Config: runctx.Config{Home: dir, Identity: idFile, Kubeconfig: kubeconfig, Getenv: func(string) string { return "" }},
			Stderr: &stderr,
		})
		took := time.Since(start)
		c1, s1, e1, r1, t1 := fleet.Counts()
		ph := perHost{Conns: float64(c1-c0) / float64(n), Sessions: float64(s1-s0) / float64(n),
			Execs: float64(e1-e0) / float64(n), Reqs: float64(r1-r0) / float64(n), ByType: map[string]float64{}}
		for k, v := range t1 {
			if d := v - t0[k]; d > 0 {
				ph.ByType[k] = float64(d) / float64(n)
			}
		}
		changed := 0
		for _, c := range out.Targets {
			changed += c.Changed
		}
		if out.Exit != 0 {
			return took, out.Exit, changed, ph, fmt.Errorf("sync of %d in-process hosts: exit %d: %v\n%s", n, out.Exit, out.Err, tail(stderr.String(), 30))
		}
		return took, out.Exit, changed, ph, nil
	}
	var runErr error
	res.First, res.ExitFirst, res.ChangedFirst, res.PerHostFirst, runErr = run()
	if runErr == nil {
		runErr = checkFleet(fleet, nodes, want)
	}
	if runErr == nil {
		res.Second, res.ExitSecond, res.ChangedSecond, res.PerHostSecond, runErr = run()
	}
	close(stop)
	sampler.Wait()
	if runErr != nil {
		return res, runErr
	}

	// After the run: connections closed on both sides, goroutines and file
	// descriptors back to where they were.
	deadline := time.Now().Add(10 * time.Second)
	for {
		settle()
		res.GoroutinesAfter, res.FDsAfter, res.ActiveAfter = runtime.NumGoroutine(), countFDs(), fleet.Active()
		res.SSHGoroutinesAfter, res.KubeConnsAfter = goroutineKinds()
		if (res.GoroutinesAfter <= res.GoroutinesBase && res.ActiveAfter == 0 && res.FDsAfter <= res.FDsBase) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.HeapAfter, res.RSSAfter = heapInuse(), rssKB()
	var leaks []string
	if res.GoroutinesAfter > res.GoroutinesBase || res.SSHGoroutinesAfter > 0 {
		leaks = append(leaks, fmt.Sprintf("%d goroutines more than before the run (%d in SSH code)", res.GoroutinesAfter-res.GoroutinesBase, res.SSHGoroutinesAfter))
		buf := make([]byte, 1<<20)
		os.WriteFile(filepath.Join(dir, "goroutines-after.txt"), buf[:runtime.Stack(buf, true)], 0o644)
	}
	if res.ActiveAfter != 0 {
		leaks = append(leaks, fmt.Sprintf("%d connections still open on the servers", res.ActiveAfter))
	}
	if res.FDsAfter > res.FDsBase {
		leaks = append(leaks, fmt.Sprintf("%d file descriptors more than before", res.FDsAfter-res.FDsBase))
	}
	if d := res.KubeConnsAfter - res.KubeConnsBase; d > 0 {
		leaks = append(leaks, fmt.Sprintf("%d connections to the API server more than before", d))
	}
	res.Leak = strings.Join(leaks, "; ")
	return res, nil
}

// checkFleet compares every server's file with what mno's roles render.
func checkFleet(fleet *Fleet, nodes []Node, want *Expected) error {
	var bad []string
	for i, s := range fleet.Servers {
		n := nodes[i]
		s.fs.mu.Lock()
		f, ok := s.fs.nodes[n.Path()]
		got := ""
		if ok {
			got = string(f.data)
		}
		s.fs.mu.Unlock()
		if !ok || got != want.Files[n.Name] || f.mode != 0o644 {
			bad = append(bad, n.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("scale run: %d hosts hold the wrong file: %s", len(bad), strings.Join(first(bad, 10), ", "))
	}
	return nil
}

// goroutineKinds counts the goroutines running SSH code (client or server)
// and the HTTP/2 connections to the API server (one read loop each).
func goroutineKinds() (ssh, kube int) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "http2.(*ClientConn).readLoop"):
			kube++
		case strings.Contains(g, "golang.org/x/crypto/ssh") || strings.Contains(g, "github.com/pkg/sftp") ||
			strings.Contains(g, "mno/builtins/ssh"):
			ssh++
		}
	}
	return ssh, kube
}

// settle lets finished goroutines exit and collects garbage.
func settle() {
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rssKB is VmRSS from /proc/self/status.
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

func countFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// Markdown renders the scale run for RESULTS.md.
func (r *ScaleResult) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Scale: %d in-process hosts\n\n", r.N)
	w("`sync` through the engine in this process (as `mno run sync` runs it, default limit 32) against %d\n", r.N)
	w("x/crypto/ssh servers with a pkg/sftp server on an in-memory filesystem, each on its own loopback\n")
	w("address (half VPSes, half laptops; all log in as root, so everything is SFTP). The servers live in\n")
	w("the same process, so the memory below includes theirs; *before* is with every server listening.\n\n")
	w("| | before | peak during | after |\n|---|---|---|---|\n")
	w("| goroutines | %d | %d | %d |\n", r.GoroutinesBase, r.GoroutinesPeak, r.GoroutinesAfter)
	w("| heap in use | %.1f MiB | %.1f MiB | %.1f MiB |\n", mib(r.HeapBase), mib(r.HeapPeak), mib(r.HeapAfter))
	w("| RSS | %.1f MiB | %.1f MiB | %.1f MiB |\n", float64(r.RSSBase)/1024, float64(r.RSSPeak)/1024, float64(r.RSSAfter)/1024)
	w("| open file descriptors | %d | | %d |\n", r.FDsBase, r.FDsAfter)
	w("| connections open on the servers | 0 | | %d |\n", r.ActiveAfter)
	w("| goroutines in SSH/SFTP code (client and servers) | | | %d |\n", r.SSHGoroutinesAfter)
	w("| HTTP/2 connections to the API server | %d | | %d |\n\n", r.KubeConnsBase, r.KubeConnsAfter)
	w("- first run (every file changes): %s s, %d changes; second run: %s s, %d changes\n", secs(r.First), r.ChangedFirst, secs(r.Second), r.ChangedSecond)
	w("- per host, first run: %s\n", r.PerHostFirst)
	w("- per host, second run: %s\n", r.PerHostSecond)
	if r.Leak == "" {
		w("- after the run: every SSH connection closed on both sides, no goroutine left in SSH/SFTP code, goroutines, file descriptors and connections to the API server back to the baseline (the run closes its own API connections when it ends)\n")
	} else {
		w("- **leak: %s**\n", r.Leak)
	}
	return b.String()
}

func (p perHost) String() string {
	var keys []string
	for k := range p.ByType {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, p.ByType[k]))
	}
	return fmt.Sprintf("%.1f connection, %.1f sessions, %.1f execs, %.1f SFTP requests (%s)", p.Conns, p.Sessions, p.Execs, p.Reqs, strings.Join(parts, ", "))
}

// Summary is one line for the README.
func (r *ScaleResult) Summary() string {
	s := fmt.Sprintf("At %d hosts (in-process SSH/SFTP servers, bench/scale.go) a sync takes %s s the first time and %s s the second; "+
		"peak RSS %.0f MiB (servers included), ", r.N, secs(r.First), secs(r.Second), float64(r.RSSPeak)/1024)
	if r.Leak == "" {
		return s + "and after the run goroutines, file descriptors and connections are back to the baseline."
	}
	return s + "and after the run: " + r.Leak + "."
}

var _ io.Reader = (*countingRW)(nil)
