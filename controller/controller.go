// Package controller runs a playbook as a watching controller: once at start,
// whenever a watched ConfigMap changes (client-go informers, debounced), and
// every resync period — never two runs at once, failed runs retried with
// capped exponential backoff, and only while this process holds the leader
// Lease, so several control planes never sync at the same time.
package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/mno-sh/mno/builtins/kube/kclient"
)

// Target is one watched ConfigMap.
type Target struct{ Namespace, Name string }

func (t Target) String() string { return t.Namespace + "/" + t.Name }

// RunFunc runs the playbook once; ctx is cancelled when the run must stop.
// It returns the run's exit code and per-node outcome (true = ok).
type RunFunc func(ctx context.Context) RunResult

// RunResult is what one run reports back.
type RunResult struct {
	Exit    int
	Targets map[string]bool // target name → ok
	// Problems counts the cluster state's problems by level ("invalid",
	// "warning"); nil when the run did not read the state.
	Problems map[string]int
}

// Options configure a Controller.
type Options struct {
	Client *kclient.Client
	Watch  []Target
	// Services also runs the playbook when a Service changes in any
	// namespace (its type, ports, load-balancer address or annotations,
	// or it is created or deleted): `mno watch discover --on-services`.
	Services bool
	Resync   time.Duration // 0: no periodic run
	Debounce time.Duration // a burst of changes within this gives one run
	// Grace is how long a run may go on after SIGTERM before it is cancelled.
	Grace time.Duration
	// Backoff bounds for retrying a failed run.
	BackoffMin, BackoffMax time.Duration
	// Leader election: the Lease and this process's identity. LeaseName ""
	// disables election (a single controller).
	LeaseName, LeaseNamespace, Identity       string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Ignore lists JSON fields whose changes alone do not trigger a run
	// (default StatusFields: what the sync itself writes).
	Ignore  []string
	Log     io.Writer
	Metrics *Metrics
	Run     RunFunc
	Now     func() time.Time
}

// Controller is a watching controller for one playbook.
type Controller struct {
	o       Options
	trigger chan string // reasons
}

// New validates o and returns a controller.
func New(o Options) (*Controller, error) {
	if o.Client == nil || o.Run == nil {
		return nil, errors.New("controller: Client and Run are required")
	}
	if o.Debounce <= 0 {
		o.Debounce = 2 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 30 * time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 5 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.LeaseNamespace == "" {
		o.LeaseNamespace = "kube-system"
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Ignore == nil {
		o.Ignore = StatusFields
	}
	return &Controller{o: o, trigger: make(chan string, 1)}, nil
}

func (c *Controller) logf(format string, args ...any) {
	fmt.Fprintf(c.o.Log, "%s watch: %s\n", c.o.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// Run blocks until ctx is done (SIGTERM/SIGINT). stop, when closed, asks the
// current run to finish within the grace period and then cancels it.
func (c *Controller) Run(ctx context.Context) error {
	if c.o.LeaseName == "" {
		c.o.Metrics.setLeader(true)
		return c.lead(ctx)
	}
	return c.elect(ctx)
}

// lead runs the control loop while this process is the leader.
func (c *Controller) lead(ctx context.Context) error {
	factoryStop := make(chan struct{})
	defer close(factoryStop)
	for _, t := range c.o.Watch {
		if err := c.watch(ctx, t, factoryStop); err != nil {
			return err
		}
	}
	if c.o.Services {
		if err := c.watchServices(ctx, factoryStop); err != nil {
			return err
		}
	}
	var resync <-chan time.Time
	if c.o.Resync > 0 {
		tk := time.NewTicker(c.o.Resync)
		defer tk.Stop()
		resync = tk.C
	}
	pending := "start"
	// Debounce: a run waits until no change came for Debounce (a burst of
	// changes gives one run), but never longer than maxWait after the first
	// change, so constant churn cannot starve the sync.
	maxWait := 10 * c.o.Debounce
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	debouncing := false
	var firstChange time.Time
	var retry <-chan time.Time
	failures := 0
	for {
		if pending != "" && !debouncing && retry == nil {
			reason := pending
			pending = ""
			res := c.runOnce(ctx, reason)
			if ctx.Err() != nil {
				return nil
			}
			if res.Exit != 0 {
				failures++
				d := c.backoff(failures)
				c.logf("run failed (exit %d); retrying in %s", res.Exit, d.Round(time.Millisecond))
				retry = time.After(d)
				pending = "retry"
			} else {
				failures = 0
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case reason := <-c.trigger:
			if pending == "" || pending == "retry" {
				pending = reason
			}
			now := c.o.Now()
			if !debouncing {
				debouncing, firstChange = true, now
			}
			if wait := min(c.o.Debounce, firstChange.Add(maxWait).Sub(now)); wait > 0 {
				debounce.Reset(wait)
			} else {
				debounce.Reset(0)
			}
		case <-debounce.C:
			debouncing = false
		case <-retry:
			retry = nil
		case <-resync:
			if pending == "" {
				pending = "resync"
			}
		}
	}
}

func (c *Controller) backoff(failures int) time.Duration {
	d := c.o.BackoffMin
	for i := 1; i < failures && d < c.o.BackoffMax; i++ {
		d *= 2
	}
	if d > c.o.BackoffMax {
		d = c.o.BackoffMax
	}
	// ±10% jitter so several controllers do not retry in step.
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// runOnce runs the playbook; when ctx ends mid-run, the run gets the grace
// period to finish before it is cancelled.
func (c *Controller) runOnce(ctx context.Context, reason string) RunResult {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case <-ctx.Done():
			c.logf("stopping: the current run has %s to finish", c.o.Grace)
			select {
			case <-time.After(c.o.Grace):
				once.Do(func() { c.logf("grace period over: cancelling the run") })
				cancel()
			case <-done:
			}
		case <-done:
		}
	}()
	c.logf("run (%s)", reason)
	start := c.o.Now()
	res := c.o.Run(runCtx)
	close(done)
	c.o.Metrics.observe(res, c.o.Now().Sub(start), c.o.Now())
	c.logf("run done: exit %d in %s", res.Exit, c.o.Now().Sub(start).Round(time.Millisecond))
	return res
}

// Trigger asks for a run (as a ConfigMap change does).
func (c *Controller) Trigger(reason string) {
	select {
	case c.trigger <- reason:
	default: // a trigger is already pending
	}
}

func (c *Controller) watch(ctx context.Context, t Target, stop chan struct{}) error {
	// An informer on the one ConfigMap (a field selector on its name), over
	// kclient: client-go's informer machinery without its typed clientset.
	cms := c.o.Client.ConfigMaps(t.Namespace)
	selector := fields.OneTermEqualSelector("metadata.name", t.Name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return cms.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return cms.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	var mu sync.Mutex
	synced := false
	last := "" // fingerprint of the last version seen
	seen := func(obj any, why string) {
		fp := "deleted"
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			fp = Fingerprint(cm, c.o.Ignore)
		}
		mu.Lock()
		changed := fp != last
		last = fp
		trigger := synced && changed
		mu.Unlock()
		if trigger {
			c.Trigger(fmt.Sprintf("%s %s", t, why))
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { seen(obj, "created") },
		UpdateFunc: func(_, obj any) { seen(obj, "changed") },
		DeleteFunc: func(obj any) { seen(nil, "deleted") },
	})
	go inf.Run(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %s: cache did not sync", t)
	}
	mu.Lock()
	synced = true
	mu.Unlock()
	return nil
}
