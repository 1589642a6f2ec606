package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
	"github.com/mno-sh/mno/lab/kubeapi"
)

// BenchmarkSyncInProcess runs the stock sync playbook through engine.Run
// (what `mno run sync` does, minus process start) against N real sshd hosts
// and the real kube-apiserver, with the registry of bench/fixture.go. It is
// the one to profile:
//
//	go test -run '^$' -bench 'SyncInProcess/N=50' -benchtime 10x \
//	    -cpuprofile cpu.out -blockprofile block.out ./bench/
//
// first: every node's file changes (hosts and registry reset, untimed,
// before each run); second: nothing changes. BENCH_N sets the Ns (default 50).
func BenchmarkSyncInProcess(b *testing.B) {
	if _, err := kubeapi.FindBinaries(); err != nil {
		b.Skipf("real kube-apiserver missing (make tools): %v", err)
	}
	ns := []int{50}
	if s := os.Getenv("BENCH_N"); s != "" {
		ns = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("BENCH_N: %v", err)
			}
			ns = append(ns, n)
		}
	}
	verbose := os.Getenv("BENCH_JOURNAL") // a file that gets the journal of every run, with durations
	dir := b.TempDir()
	api, err := StartAPI(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { api.Stop() })
	client, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range ns {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			idFile, line, _, err := Identity(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			lab := hoststest.Start(b, n, hosts.Names(NodeNames(n)...), hosts.AuthorizedKeys(line))
			nodes := NodesOf(lab)
			ctx := context.Background()
			if err := WriteCluster(ctx, client, nodes); err != nil {
				b.Fatal(err)
			}
			if err := PrepareHosts(nodes); err != nil {
				b.Fatal(err)
			}
			home, root := b.TempDir(), b.TempDir()
			want, err := ComputeExpected(ctx, api.Kubeconfig, root)
			if err != nil {
				b.Fatal(err)
			}
			os.Remove(filepath.Join(root, "expect.star"))
			sync := func(b *testing.B) {
				var stderr bytes.Buffer
				res := engine.Run(ctx, engine.Options{
					Playbook: "sync", Root: root, Embedded: mno.Files, Stderr: &stderr, Verbose: verbose != "",
					Config: runctx.Config{Home: home, Identity: idFile, Kubeconfig: api.Kubeconfig, Getenv: func(string) string { return "" }},
				})
				if res.Exit != 0 {
					b.Fatalf("sync: exit %d: %v\n%s", res.Exit, res.Err, stderr.String())
				}
				if verbose != "" {
					f, err := os.OpenFile(verbose, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
					if err != nil {
						b.Fatal(err)
					}
					f.Write(stderr.Bytes())
					f.Close()
				}
			}
			reset := func(b *testing.B) {
				if err := ResetHosts(nodes); err != nil {
					b.Fatal(err)
				}
				if err := ResetRegistry(ctx, client, nodes); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("first", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					reset(b)
					b.StartTimer()
					sync(b)
				}
				if bad := CheckFiles(nodes, want); len(bad) > 0 {
					b.Fatalf("wrong files: %s", strings.Join(bad, "; "))
				}
			})
			b.Run("second", func(b *testing.B) {
				for b.Loop() {
					sync(b)
				}
			})
		})
	}
}
