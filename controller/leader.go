package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/builtins/kube/kclient"
)

// elector holds a coordination.k8s.io Lease the way client-go's leader
// election does (same fields, same expiry rule), over kclient: a holder
// keeps the lease by renewing it every RetryPeriod; another takes it over
// once it has seen the same record, unrenewed, for the record's duration on
// its own clock (so clock skew between machines does not matter); a holder
// that cannot renew within RenewDeadline stops leading; a holder that stops
// releases the lease so a successor need not wait.
type elector struct {
	leases   kclient.Objects[*coordinationv1.Lease, *coordinationv1.LeaseList]
	ns, name string
	id       string
	duration time.Duration
	now      func() time.Time
	logf     func(format string, args ...any)

	observed   string    // the record last read: holder, renew time, duration
	observedAt time.Time // when it was first seen, on this clock
	leader     string    // the holder last reported
}

func newElector(c *Controller) *elector {
	return &elector{
		leases: c.o.Client.Leases(c.o.LeaseNamespace), ns: c.o.LeaseNamespace, name: c.o.LeaseName, id: c.o.Identity,
		duration: c.o.LeaseDuration, now: c.o.Now, logf: c.logf,
	}
}

// try takes or renews the lease and reports whether this process holds it.
func (e *elector) try(ctx context.Context) (bool, error) {
	now := e.now()
	cur, err := e.leases.Get(ctx, e.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.name, Namespace: e.ns}}
		e.fill(l, now, true)
		if _, err := e.leases.Create(ctx, l, metav1.CreateOptions{FieldManager: "mno"}); err != nil {
			return false, err
		}
		e.see(l, now)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	e.see(cur, now)
	holder := holderOf(cur)
	if holder != "" && holder != e.id && e.observedAt.Add(recordDuration(cur)).After(now) {
		return false, nil // held, and renewed within its duration
	}
	next := cur.DeepCopy()
	e.fill(next, now, holder != e.id)
	if _, err := e.leases.Update(ctx, next, metav1.UpdateOptions{FieldManager: "mno"}); err != nil {
		return false, err // a conflict: someone else wrote it first
	}
	e.see(next, now)
	return true, nil
}

// fill makes l this process's, renewed now; acquired starts a new term.
func (e *elector) fill(l *coordinationv1.Lease, now time.Time, acquired bool) {
	id := e.id
	secs := int32(e.duration / time.Second)
	t := metav1.NewMicroTime(now)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &id, &secs, &t
	if acquired || l.Spec.AcquireTime == nil {
		l.Spec.AcquireTime = &t
		if l.Spec.LeaseTransitions != nil {
			n := *l.Spec.LeaseTransitions + 1
			l.Spec.LeaseTransitions = &n
		} else {
			n := int32(0)
			l.Spec.LeaseTransitions = &n
		}
	}
}

// see notes the record read at now and reports a new leader.
func (e *elector) see(l *coordinationv1.Lease, now time.Time) {
	rec := fmt.Sprintf("%s|%v|%v", holderOf(l), l.Spec.RenewTime, recordDuration(l))
	if rec != e.observed {
		e.observed, e.observedAt = rec, now
	}
	if h := holderOf(l); h != e.leader {
		e.leader = h
		if h != "" && h != e.id {
			e.logf("leader is %s", h)
		}
	}
}

// release hands the lease back (holder cleared, duration 1 s), as client-go
// does with ReleaseOnCancel, if this process still holds it.
func (e *elector) release(ctx context.Context) error {
	cur, err := e.leases.Get(ctx, e.name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if holderOf(cur) != e.id {
		return nil
	}
	next := cur.DeepCopy()
	empty, one, t := "", int32(1), metav1.NewMicroTime(e.now())
	next.Spec.HolderIdentity, next.Spec.LeaseDurationSeconds, next.Spec.RenewTime, next.Spec.AcquireTime = &empty, &one, &t, &t
	_, err = e.leases.Update(ctx, next, metav1.UpdateOptions{FieldManager: "mno"})
	if apierrors.IsConflict(err) {
		return nil // rewritten since: not ours any more
	}
	return err
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func recordDuration(l *coordinationv1.Lease) time.Duration {
	if l.Spec.LeaseDurationSeconds == nil {
		return 0
	}
	return time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
}

// jitter returns d plus up to 120% of it, client-go's JitterFactor, so
// candidates do not knock in step.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(1.2*rand.Float64()*float64(d))
}

// elect runs lead while this process holds the lease, until ctx is done. A
// lost lease cancels lead's context (the current run gets the grace period)
// and the election starts over. On ctx's end the lease is kept renewed until
// lead has returned — its run may still finish within the grace period —
// and then released.
func (c *Controller) elect(ctx context.Context) error {
	e := newElector(c)
	for {
		// Acquire.
		for {
			ok, err := c.tryWithin(ctx, e)
			if ok {
				break
			}
			if err != nil && ctx.Err() == nil {
				c.logf("lease %s/%s: %v", e.ns, e.name, err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(jitter(c.o.RetryPeriod)):
			}
		}
		c.o.Metrics.setLeader(true)
		c.logf("became leader (%s/%s as %s)", e.ns, e.name, e.id)
		lctx, cancel := context.WithCancel(ctx)
		leadDone := make(chan error, 1)
		go func() { leadDone <- c.lead(lctx) }()

		// Renew until lead returns; stop leading when the lease is lost.
		lastRenew := c.o.Now()
		var leadErr error
		lost := false
	renew:
		for {
			select {
			case leadErr = <-leadDone:
				break renew
			case <-time.After(c.o.RetryPeriod):
			}
			if lost {
				continue // waiting for lead to wind down
			}
			ok, err := c.tryWithin(context.WithoutCancel(ctx), e)
			switch {
			case ok:
				lastRenew = c.o.Now()
			case c.o.Now().Sub(lastRenew) > c.o.RenewDeadline || (err == nil && !ok):
				lost = true
				c.logf("lost the lease %s/%s (%v)", e.ns, e.name, orHeld(err))
				cancel()
			}
			if ctx.Err() != nil {
				cancel() // the current run gets its grace period; the lease stays renewed meanwhile
			}
		}
		cancel()
		c.o.Metrics.setLeader(false)
		c.logf("not leading")
		if !lost {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.RenewDeadline)
			if err := e.release(rctx); err != nil {
				c.logf("releasing the lease %s/%s: %v", e.ns, e.name, err)
			}
			rcancel()
		}
		if ctx.Err() != nil {
			return nil
		}
		if leadErr != nil {
			return leadErr
		}
	}
}

// tryWithin is one try bounded by the renew deadline.
func (c *Controller) tryWithin(ctx context.Context, e *elector) (bool, error) {
	tctx, cancel := context.WithTimeout(ctx, c.o.RenewDeadline)
	defer cancel()
	return e.try(tctx)
}

func orHeld(err error) error {
	if err == nil {
		return errors.New("another holder took it")
	}
	return err
}
