// Command buildtools builds the helper binaries the lab and the tests run — kube-apiserver,
// etcd and Traefik, from the Go module proxy — into the cache (see kubeapi.CacheDir), skipping
// those already there. `make tools` runs it before the tests; a cold build took 38 minutes on a
// shared two-core machine (etcd 2, kube-apiserver 13, Traefik 23), printing the time left as it
// goes. A build another process runs (`mno lab up` leaves Traefik's in the background) is waited
// for, with its progress.
//
//	go run ./lab/cmd/buildtools [-cache dir]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/mno-sh/mno/lab/kubeapi"
	"github.com/mno-sh/mno/lab/traefik"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "buildtools:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("buildtools", flag.ContinueOnError)
	fs.SetOutput(progress)
	cache := fs.String("cache", "", "cache directory (default $MNO_CACHE or the user cache dir + /mno)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	dir := *cache
	if dir == "" {
		var err error
		if dir, err = kubeapi.CacheDir(); err != nil {
			return err
		}
	}
	start := time.Now()
	bins, err := kubeapi.Build(ctx, dir, progress)
	if err != nil {
		return err
	}
	tr, err := traefik.Build(ctx, dir, progress, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "buildtools: done in %s\n", time.Since(start).Round(time.Second))
	fmt.Fprintln(out, bins.APIServer)
	fmt.Fprintln(out, bins.Etcd)
	fmt.Fprintln(out, tr)
	return nil
}
