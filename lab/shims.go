package lab

import (
	_ "embed"
	"errors"
	"strings"

	"github.com/mno-sh/mno/internal/shellquote"

	"github.com/mno-sh/mno/lab/hosts"
)

var (
	//go:embed scripts/docker.sh
	dockerScript string
	//go:embed scripts/apt-get.sh
	aptScript string
	//go:embed scripts/curl.sh
	curlScript string
	//go:embed scripts/install-k3s.sh
	installScript string
)

// setShims gives every node the lab's answers: tailscale knows the node's
// address, apt-get "installs" docker, docker runs Traefik (waiting for its
// build if it still runs in the background), and on workers the k3s
// installer installs the agent stand-in.
func (c *Cluster) setShims() error {
	hl := c.hosts
	docker := strings.NewReplacer("@TRAEFIK@", shellquote.Quote(c.Traefik), "@MNO@", shellquote.Quote(c.Exe)).Replace(dockerScript)
	installer := strings.ReplaceAll(installScript, "@MNO@", shellquote.Quote(c.Exe))
	curl := strings.ReplaceAll(curlScript, "@INSTALLER@", strings.TrimRight(installer, "\n"))
	var errs []error
	errs = append(errs,
		hl.SetShim("apt-get", hosts.ShimResponse{Script: aptScript}),
		hl.SetShim("docker", hosts.ShimResponse{Script: docker}),
	)
	for _, h := range hl.Hosts() {
		errs = append(errs, h.SetShim("tailscale ip -4", hosts.ShimResponse{Stdout: h.Addr + "\n"}))
		if strings.HasPrefix(h.Name, KindWorker+"-") {
			errs = append(errs, h.SetShim("curl", hosts.ShimResponse{Script: curl}))
		}
	}
	return errors.Join(errs...)
}
