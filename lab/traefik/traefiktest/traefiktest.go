// Package traefiktest starts a real Traefik for a test. When the binary has not been built,
// tests are skipped, except under CI=true where a missing real part is a failure: run
// `make tools` (go run ./lab/cmd/buildtools) first.
package traefiktest

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/traefik"
)

// StartTimeout bounds how long Start waits for Traefik to answer.
const StartTimeout = time.Minute

// Binary returns the cached Traefik binary, or ends the test if it is missing: a skip
// locally, a failure under CI=true.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := traefik.Binary()
	if errors.Is(err, traefik.ErrNotBuilt) {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("real Traefik missing: %v", err)
		}
		t.Skipf("real Traefik missing: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Start runs Traefik for the rest of the test, with the cached binary unless opts.Binary is
// set. Its output is logged if the test fails.
func Start(t testing.TB, opts traefik.Options) *traefik.Process {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = Binary(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	p, err := traefik.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop traefik: %v", err)
		}
		if t.Failed() {
			t.Logf("traefik output:\n%s", p.Output())
		}
	})
	return p
}
