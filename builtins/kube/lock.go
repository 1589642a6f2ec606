package kube

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

// releaseTimeout bounds the release of a lease at run end, which may come
// after the run was cancelled.
const releaseTimeout = 10 * time.Second

func lock(k *call) (starlark.Value, error) {
	var name string
	ttl := starkit.Duration{D: 2 * time.Minute}
	wait := starkit.Duration{D: time.Minute}
	ns := DefaultNamespace
	if err := k.unpack("name", &name, "ttl?", &ttl, "wait?", &wait, "namespace?", &ns); err != nil {
		return nil, err
	}
	if ttl.D < time.Second {
		return nil, k.errorf("ttl %s is too short (at least 1s; it is renewed every ttl/3)", ttl.D)
	}
	reg := leasesOf(k.r)
	key := ns + "/" + name
	unlock := reg.lockKey(key) // threads of one run take a lease one at a time
	defer unlock()
	if l := reg.get(key); l != nil {
		return l.value(false), nil // re-entrant within one run
	}
	var l *lease
	out, err := k.do(func(c *cluster) journal.Op {
		l = &lease{
			c: c, r: k.r, leases: c.api.Leases(ns), ns: ns, name: name,
			holder: holderIdentity(k.r.ID), ttl: ttl.D, now: time.Now,
		}
		return journal.Op{Kind: "lock", Desc: "lease " + key, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				note, err := l.inspect(ctx)
				return journal.Change{Changed: true, Note: note}, err
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				note, err := l.acquire(ctx, wait.D)
				return journal.Change{Changed: true, Note: note}, err
			},
		}
	})
	if err != nil {
		return nil, err
	}
	if out.Simulated {
		return l.value(true), nil
	}
	reg.add(key, l)
	l.start()
	k.r.OnClose(l.release)
	return l.value(false), nil
}

// leases are the locks a run holds, so that taking one twice is a no-op.
type leases struct {
	mu   sync.Mutex
	keys map[string]*sync.Mutex
	held map[string]*lease
}

type leasesKey struct{}

func leasesOf(r *runctx.Run) *leases {
	l, _ := runctx.Resource(r, leasesKey{}, func() (*leases, error) {
		return &leases{keys: map[string]*sync.Mutex{}, held: map[string]*lease{}}, nil
	})
	return l
}

// lockKey serialises the threads of one run taking the same lease.
func (s *leases) lockKey(key string) func() {
	s.mu.Lock()
	m, ok := s.keys[key]
	if !ok {
		m = &sync.Mutex{}
		s.keys[key] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (s *leases) get(key string) *lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[key]
}

func (s *leases) add(key string, l *lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[key] = l
}

// holderIdentity names this run on this machine, so an operator who finds
// the lease knows where to look.
func holderIdentity(runID string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return host + "/" + runID
}

// lease is one coordination.k8s.io/v1 Lease held by the run.
type lease struct {
	c        *cluster
	r        *runctx.Run
	leases   kclient.Objects[*coordinationv1.Lease, *coordinationv1.LeaseList]
	ns, name string
	holder   string
	ttl      time.Duration
	now      func() time.Time

	stop chan struct{}
	done chan struct{}
}

func (l *lease) value(simulated bool) starlark.Value {
	return starlarkstruct.FromStringDict(starlark.String("lease"), starlark.StringDict{
		"name":      starlark.String(l.name),
		"namespace": starlark.String(l.ns),
		"holder":    starlark.String(l.holder),
		"ttl":       starlark.String(l.ttl.String()),
		"held":      starlark.Bool(!simulated),
		"simulated": starlark.Bool(simulated),
	})
}

// inspect reads the lease and says what acquiring it would do (dry-run).
func (l *lease) inspect(ctx context.Context) (string, error) {
	cur, err := l.leases.Get(ctx, l.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "free", nil
	case err != nil:
		return "", l.c.apiError("get", "lease", l.ns, l.name, err)
	}
	h := holderOf(cur)
	switch {
	case h == "":
		return "free", nil
	case expired(cur, l.now()):
		return "expired; held by " + h, nil
	}
	return "held by " + h + " since " + since(cur, l.now()), nil
}

// acquire takes the lease: creates it, or takes it when it is free, ours
// or expired, every write guarded by the resourceVersion read, so two takers
// cannot both win. A lease held by someone else is polled until wait ends.
func (l *lease) acquire(ctx context.Context, wait time.Duration) (string, error) {
	start := time.Now()
	deadline := start.Add(wait)
	waited := func(note string) string {
		if d := time.Since(start); d >= 100*time.Millisecond {
			if note != "" {
				note += ", "
			}
			note += "waited " + d.Round(100*time.Millisecond).String()
		}
		return note
	}
	for {
		cur, err := l.leases.Get(ctx, l.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = l.leases.Create(ctx, l.spec(nil), metav1.CreateOptions{FieldManager: fieldManager})
			if err == nil {
				return waited(""), nil
			}
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			return "", l.c.apiError("create", "lease", l.ns, l.name, err)
		}
		if err != nil {
			return "", l.c.apiError("get", "lease", l.ns, l.name, err)
		}
		h := holderOf(cur)
		if h == "" || h == l.holder || expired(cur, l.now()) {
			_, err := l.leases.Update(ctx, l.spec(cur), metav1.UpdateOptions{FieldManager: fieldManager})
			if err == nil {
				if h != "" && h != l.holder {
					return waited("took over expired lease of " + h), nil
				}
				return waited(""), nil
			}
			if apierrors.IsConflict(err) {
				continue
			}
			return "", l.c.apiError("update", "lease", l.ns, l.name, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return "", fmt.Errorf("lease %s/%s is held by %s since %s; gave up after waiting %s",
				l.ns, l.name, h, since(cur, l.now()), wait)
		}
		d := min(left, 250*time.Millisecond+rand.N(500*time.Millisecond))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", context.Cause(ctx)
		case <-t.C:
		}
	}
}

// spec returns the lease as held by us now: a new one when cur is nil,
// else cur taken over or renewed.
func (l *lease) spec(cur *coordinationv1.Lease) *coordinationv1.Lease {
	now := metav1.NewMicroTime(l.now())
	secs := int32((l.ttl + time.Second - 1) / time.Second)
	var next *coordinationv1.Lease
	if cur == nil {
		next = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: l.ns}}
	} else {
		next = cur.DeepCopy()
	}
	if holderOf(cur) != l.holder {
		next.Spec.AcquireTime = &now
		if cur != nil {
			n := int32(0)
			if cur.Spec.LeaseTransitions != nil {
				n = *cur.Spec.LeaseTransitions
			}
			n++
			next.Spec.LeaseTransitions = &n
		}
	}
	next.Spec.HolderIdentity = &l.holder
	next.Spec.LeaseDurationSeconds = &secs
	next.Spec.RenewTime = &now
	return next
}

func (l *lease) start() {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.renewLoop()
}

var errLost = errors.New("lost")

// renewLoop renews the lease every ttl/3 until release. Losing it (someone
// took over an expired lease, or deleted it) is reported as a warning.
func (l *lease) renewLoop() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
		err := l.renew(ctx)
		cancel()
		switch {
		case errors.Is(err, errLost):
			l.r.Journal.Warn("", Target, fmt.Sprintf("lease %s/%s was lost: %v; another run may now hold it", l.ns, l.name, err))
			return
		case err != nil && !failing:
			l.r.Journal.Warn("", Target, fmt.Sprintf("renewing lease %s/%s: %v (retrying every %s)", l.ns, l.name, err, l.ttl/3))
			failing = true
		case err == nil:
			failing = false
		}
	}
}

func (l *lease) renew(ctx context.Context) error {
	for i := 0; i < 3; i++ {
		cur, err := l.leases.Get(ctx, l.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: it was deleted", errLost)
		}
		if err != nil {
			return l.c.apiError("get", "lease", l.ns, l.name, err)
		}
		if h := holderOf(cur); h != l.holder {
			return fmt.Errorf("%w: it is now held by %q", errLost, h)
		}
		_, err = l.leases.Update(ctx, l.spec(cur), metav1.UpdateOptions{FieldManager: fieldManager})
		if !apierrors.IsConflict(err) {
			return l.c.apiError("update", "lease", l.ns, l.name, err)
		}
	}
	return errors.New("renewal kept conflicting")
}

// release stops renewing and deletes the lease if it is still ours,
// guarded by the resourceVersion read, so a lease someone else has taken
// over in the meantime is left alone.
func (l *lease) release() {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	cur, err := l.leases.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil || holderOf(cur) != l.holder {
		if err != nil && !apierrors.IsNotFound(err) {
			l.r.Journal.Warn("", Target, fmt.Sprintf("releasing lease %s/%s: %v (it expires after %s)", l.ns, l.name, l.c.apiError("get", "lease", l.ns, l.name, err), l.ttl))
		}
		return
	}
	err = l.leases.Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		l.r.Journal.Warn("", Target, fmt.Sprintf("releasing lease %s/%s: %v (it expires after %s)", l.ns, l.name, l.c.apiError("delete", "lease", l.ns, l.name, err), l.ttl))
	}
}

func holderOf(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// expired reports whether the holder failed to renew within the lease's
// duration. It compares the holder's clock with ours: control planes are
// expected to run NTP.
func expired(l *coordinationv1.Lease, now time.Time) bool {
	t := l.Spec.RenewTime
	if t == nil {
		t = l.Spec.AcquireTime
	}
	if t == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return t.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second).Before(now)
}

// since renders the lease's acquireTime and age, e.g.
// "2025-11-22T20:10:11Z (42s ago)".
func since(l *coordinationv1.Lease, now time.Time) string {
	t := l.Spec.AcquireTime
	if t == nil {
		t = l.Spec.RenewTime
	}
	if t == nil {
		return "an unknown time"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(t.Time).Round(time.Second))
}
