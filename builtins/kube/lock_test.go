package kube_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/diag"
)

// session is one run, kept open until the test closes it, so that two
// runs can compete for a lease.
func (e *env) session(t *testing.T, dry bool) *engine.Session {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "run.star")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o := e.options()
	s, _, err := engine.NewSession(context.Background(), engine.Options{
		Playbook: path, DryRun: dry, Embedded: mno.Files, Root: dir, Config: o.Config, Globals: o.Globals,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// run runs src in the session under a new file name each time (the loader
// caches modules by path for the whole run).
func run(s *engine.Session, src string) error {
	name := fmt.Sprintf("exec-%d.star", execCount.Add(1))
	_, err := s.Exec(s.Loader.Virtual(filepath.Join(s.Loader.Root(), name), []byte(src)))
	if err != nil {
		return errorString(diag.Render(err, nil))
	}
	return nil
}

var execCount atomic.Int64

type errorString string

func (e errorString) Error() string { return string(e) }

func (e *env) holder(t *testing.T, name string) (holder string, renew time.Time, found bool) {
	t.Helper()
	l, err := e.client.CoordinationV1().Leases(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", time.Time{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.Time
	}
	return *l.Spec.HolderIdentity, renew, true
}

// TestLockHeldByAnotherRun: a second run waits, then fails naming the
// holder; the holder keeps renewing past its ttl; the lease is released
// when the holder's run ends and the next run gets it at once.
func TestLockHeldByAnotherRun(t *testing.T) {
	e := newEnv(t)
	a := e.session(t, false)
	if err := run(a, `kube.lock("cp", ttl = "3s", namespace = ns)`); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := host + "/" + a.Run.ID
	holder, renewed, ok := e.holder(t, "cp")
	if !ok || holder != want {
		t.Fatalf("lease holder %q (found %v), want %q", holder, ok, want)
	}

	// Waiting longer than the ttl: only renewals keep the lease from expiring.
	b := e.session(t, false)
	start := time.Now()
	err := run(b, `kube.lock("cp", ttl = "3s", wait = "4500ms", namespace = ns)`)
	waited := time.Since(start)
	if err == nil {
		t.Fatal("second run took a lease that is held and renewed")
	}
	for _, s := range []string{"is held by " + want + " since ", "gave up after waiting 4.5s"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q:\n%v", s, err)
		}
	}
	if waited < 4500*time.Millisecond || waited > 7*time.Second {
		t.Errorf("second run waited %s, want about 4.5s", waited)
	}
	if _, renewed2, _ := e.holder(t, "cp"); !renewed2.After(renewed.Add(2 * time.Second)) {
		t.Errorf("renewTime went from %s to %s over %s: not renewed every ttl/3", renewed, renewed2, waited)
	}

	a.Close()
	if _, _, ok := e.holder(t, "cp"); ok {
		t.Fatal("lease still there after its run ended")
	}
	start = time.Now()
	if err := run(b, `kube.lock("cp", wait = "0s", namespace = ns)`); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("taking a free lease took %s", d)
	}
	if holder, _, _ := e.holder(t, "cp"); holder != host+"/"+b.Run.ID {
		t.Errorf("holder %q, want the second run", holder)
	}
}

// TestLockOneWinner: runs racing for a free or an expired lease: exactly
// one gets it, the others are told who holds it.
func TestLockOneWinner(t *testing.T) {
	e := newEnv(t)
	e.client.CoordinationV1().Leases(e.ns).Create(context.Background(), newLease("expired", "gone/run", 10*time.Minute, time.Minute), metav1.CreateOptions{})
	for _, name := range []string{"free", "expired"} {
		t.Run(name, func(t *testing.T) {
			const n = 6
			sessions := make([]*engine.Session, n)
			for i := range sessions {
				sessions[i] = e.session(t, false)
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, s := range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = run(s, `kube.lock("`+name+`", wait = "0s", namespace = ns)`)
				}()
			}
			wg.Wait()
			holder, _, _ := e.holder(t, name)
			winners := 0
			for i, err := range errs {
				switch {
				case err == nil:
					winners++
					if !strings.HasSuffix(holder, "/"+sessions[i].Run.ID) {
						t.Errorf("run %d won, but the lease names %q", i, holder)
					}
				case !strings.Contains(err.Error(), "is held by "+holder):
					t.Errorf("run %d: %v", i, err)
				}
			}
			if winners != 1 {
				t.Errorf("%d runs got the lease, want exactly 1", winners)
			}
		})
	}
}
