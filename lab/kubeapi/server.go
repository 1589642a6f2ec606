package kubeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/lab/internal/proc"
)

// Options configure [Start].
type Options struct {
	// Dir receives etcd's data, the certificates, kubeconfigs and the two processes' logs
	// (etcd.log, kube-apiserver.log). Required; the caller creates and removes it.
	Dir string
	// Binaries to run; the zero value means [FindBinaries].
	Binaries Binaries
	// ServiceCIDR is the Service IP range, 10.0.0.0/24 if empty.
	ServiceCIDR string
	// APIServerArgs are appended to kube-apiserver's command line (later flags win).
	APIServerArgs []string
	// BindAddress is the IPv4 address kube-apiserver listens on and its serving
	// certificate names, besides loopback; "" means 127.0.0.1. `mno lab` uses
	// the lab network's gateway, so the lab's nodes reach the server too.
	BindAddress string
	// Port is kube-apiserver's port; 0 picks a free one.
	Port int
	// Detached makes etcd and kube-apiserver outlive this process (their own
	// session, no parent-death signal) and writes their PIDs to Dir/StateFile,
	// so that [Open] in another process finds the server and stops it.
	Detached bool
}

// Server is a running etcd and kube-apiserver pair on loopback.
type Server struct {
	// URL is the API server's address, https://127.0.0.1:port.
	URL string
	// Kubeconfig is the path of a kubeconfig for the cluster admin (group system:masters).
	Kubeconfig string
	// Config is the admin's client configuration, for client-go.
	Config *rest.Config
	// Dir is Options.Dir.
	Dir string

	ca        *authority
	bind      net.IP
	port      int
	detached  bool
	etcd      *process
	apiserver *process
	stopOnce  sync.Once
	stopErr   error
}

// Start runs etcd and then kube-apiserver on random loopback ports and waits until the API
// server reports ready. ctx bounds only the start: the processes run until [Server.Stop]
// (or until the calling process dies, on Linux).
func Start(ctx context.Context, opts Options) (*Server, error) {
	var err error
	if opts.Dir == "" {
		return nil, errors.New("kubeapi: Options.Dir is required")
	}
	if opts.Binaries == (Binaries{}) {
		if opts.Binaries, err = FindBinaries(); err != nil {
			return nil, fmt.Errorf("kubeapi: %w", err)
		}
	} else if err := opts.Binaries.check(); err != nil {
		return nil, fmt.Errorf("kubeapi: %w", err)
	}
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = "10.0.0.0/24"
	}
	bind := net.IPv4(127, 0, 0, 1)
	if opts.BindAddress != "" {
		if bind = net.ParseIP(opts.BindAddress).To4(); bind == nil {
			return nil, fmt.Errorf("kubeapi: BindAddress %q is not an IPv4 address", opts.BindAddress)
		}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bind: bind, port: opts.Port, detached: opts.Detached}
	if err := s.start(ctx, opts); err != nil {
		s.Stop()
		return nil, fmt.Errorf("kubeapi: %w", err)
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, opts Options) error {
	pki, err := s.writePKI(opts.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	etcdURL, err := s.startEtcd(ctx, opts.Binaries.Etcd)
	if err != nil {
		return err
	}
	if err := s.startAPIServer(ctx, opts, pki, etcdURL); err != nil {
		if s.port != 0 && s.apiserver != nil && s.apiserver.exited() && s.apiserver.portInUse() {
			return fmt.Errorf("kube-apiserver cannot listen on %s:%d, which another program uses", s.bind, s.port)
		}
		return err
	}
	c, err := kclient.New(s.Config)
	if err != nil {
		return err
	}
	if err := aggregateClusterRoles(ctx, c); err != nil {
		return err
	}
	if s.detached {
		return s.persist()
	}
	return nil
}

// startEtcd runs a single-member etcd without fsync (a test cluster does not need to survive
// power loss) and waits for its health endpoint.
func (s *Server) startEtcd(ctx context.Context, bin string) (clientURL string, err error) {
	err = retryPorts(ctx, false, func() (*process, error) {
		client, err := freePort()
		if err != nil {
			return nil, err
		}
		peer, err := freePort()
		if err != nil {
			return nil, err
		}
		clientURL = loopbackURL("http", client)
		peerURL := loopbackURL("http", peer)
		s.etcd, err = startProcess("etcd", bin, filepath.Join(s.Dir, "etcd.log"), s.detached,
			"--name=mno",
			"--data-dir="+filepath.Join(s.Dir, "etcd"),
			"--listen-client-urls="+clientURL,
			"--advertise-client-urls="+clientURL,
			"--listen-peer-urls="+peerURL,
			"--initial-advertise-peer-urls="+peerURL,
			"--initial-cluster=mno="+peerURL,
			"--unsafe-no-fsync",
			"--log-level=warn",
		)
		if err != nil {
			return nil, err
		}
		return s.etcd, waitHTTP(ctx, s.etcd, &http.Client{Timeout: 5 * time.Second}, clientURL+"/health")
	})
	return clientURL, err
}

func (s *Server) startAPIServer(ctx context.Context, opts Options, pki pkiFiles, etcdURL string) error {
	admin, err := s.ca.client("mno-admin", "system:masters")
	if err != nil {
		return err
	}
	return retryPorts(ctx, s.port != 0, func() (*process, error) {
		port := s.port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		s.URL = "https://" + net.JoinHostPort(s.bind.String(), strconv.Itoa(port))
		args := append([]string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=" + s.bind.String(),
			"--advertise-address=" + s.bind.String(),
			"--secure-port=" + strconv.Itoa(port),
			"--endpoint-reconciler-type=none",
			"--cert-dir=" + filepath.Join(s.Dir, "pki"),
			"--tls-cert-file=" + pki.servingCert,
			"--tls-private-key-file=" + pki.servingKey,
			"--client-ca-file=" + pki.caCert,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki.saPublic,
			"--service-account-signing-key-file=" + pki.saPrivate,
			"--service-cluster-ip-range=" + opts.ServiceCIDR,
			"--authorization-mode=RBAC",
			"--allow-privileged=true",
			"--profiling=false",
		}, opts.APIServerArgs...)
		s.apiserver, err = startProcess("kube-apiserver", opts.Binaries.APIServer,
			filepath.Join(s.Dir, "kube-apiserver.log"), s.detached, args...)
		if err != nil {
			return nil, err
		}
		s.Config = s.restConfig(admin)
		hc, err := httpClient(s.Config)
		if err != nil {
			return s.apiserver, err
		}
		if err := waitHTTP(ctx, s.apiserver, hc, s.URL+"/readyz"); err != nil {
			return s.apiserver, err
		}
		// Controllers inside the API server create the system namespaces concurrently with
		// readiness; callers (and mno's ConfigMaps in kube-system) expect them.
		for _, ns := range []string{"default", "kube-system"} {
			if err := waitHTTP(ctx, s.apiserver, hc, s.URL+"/api/v1/namespaces/"+ns); err != nil {
				return s.apiserver, err
			}
		}
		s.Kubeconfig = filepath.Join(s.Dir, "admin.kubeconfig")
		return s.apiserver, os.WriteFile(s.Kubeconfig, s.kubeconfig("mno-admin", admin), 0o600)
	})
}

// retryPorts runs start, which picks free ports and starts a process; if the process died
// because another one took a port in the meantime, it tries again with new ports.
func retryPorts(ctx context.Context, fixedPort bool, start func() (*process, error)) error {
	for attempt := 1; ; attempt++ {
		p, err := start()
		if err == nil {
			return nil
		}
		if p == nil || !p.exited() {
			return err
		}
		if !p.portInUse() || attempt == 3 || ctx.Err() != nil || fixedPort {
			return p.failure()
		}
	}
}

// waitHTTP polls url until it answers 200, p exits or ctx ends.
func waitHTTP(ctx context.Context, p *process, hc *http.Client, url string) error {
	return proc.WaitHTTP(ctx, hc, url, p.name, p.done, p.failure)
}

func (s *Server) restConfig(kp keyPair) *rest.Config {
	return &rest.Config{
		Host: s.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.ca.certPEM,
			CertData: kp.cert,
			KeyData:  kp.key,
		},
		QPS:   100, // a test cluster has no other clients to protect
		Burst: 200,
	}
}

// httpClient is a plain HTTP client authenticated like cfg, for health endpoints.
func httpClient(cfg *rest.Config) (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cfg.CAData)
	cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		},
	}, nil
}

// Stop stops kube-apiserver, then etcd, and waits for both to exit. It is safe to call more
// than once; Dir is left for the caller to remove.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		for _, p := range []*process{s.apiserver, s.etcd} {
			if p != nil {
				s.stopErr = errors.Join(s.stopErr, p.stop(10*time.Second))
			}
		}
	})
	return s.stopErr
}

// PIDs returns the process IDs of kube-apiserver and etcd (0 if not running), for callers that
// supervise or inspect them.
func (s *Server) PIDs() (apiserver, etcd int) {
	pid := func(p *process) int {
		if p == nil || p.exited() {
			return 0
		}
		return p.ref.PID
	}
	return pid(s.apiserver), pid(s.etcd)
}

// serviceIP returns the first address of cidr, which the API server gives the kubernetes
// Service and so must be in its serving certificate.
func serviceIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	ip := n.IP.To16()
	ip = append(net.IP(nil), ip...)
	ip[len(ip)-1]++
	return ip, nil
}
