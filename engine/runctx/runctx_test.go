package runctx

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

type counterKey struct{}
type failingKey struct{}

type counter struct{ n int }

// TestResource: a run resource is created once per key however many threads
// ask at the same time, comes back with its own type, and a failed create is
// remembered (the error returned again, create not retried).
func TestResource(t *testing.T) {
	r := New(context.Background(), "id", "pb", false, nil, nil, Config{})
	creates := 0
	var wg sync.WaitGroup
	got := make([]*counter, 8)
	for i := range got {
		wg.Go(func() {
			got[i], _ = Resource(r, counterKey{}, func() (*counter, error) {
				creates++ // under the resource's once: no race
				return &counter{n: 1}, nil
			})
		})
	}
	wg.Wait()
	if creates != 1 {
		t.Errorf("create ran %d times, want once", creates)
	}
	for i, c := range got {
		if c != got[0] || c.n != 1 {
			t.Errorf("caller %d got %p (n=%d), want the one resource %p", i, c, c.n, got[0])
		}
	}

	boom := errors.New("no cluster")
	tries := 0
	for range 2 {
		c, err := Resource(r, failingKey{}, func() (*counter, error) { tries++; return nil, boom })
		if !errors.Is(err, boom) || c != nil {
			t.Errorf("failing resource: %v, %v; want nil, %v", c, err, boom)
		}
	}
	if tries != 1 {
		t.Errorf("a failed create ran %d times, want once (the error is cached)", tries)
	}
}

// TestResourceTypeMismatch: one key asked for with two types is a wiring bug
// in mno, reported as such rather than handing back a zero value.
func TestResourceTypeMismatch(t *testing.T) {
	r := New(context.Background(), "id", "pb", false, nil, nil, Config{})
	if _, err := Resource(r, counterKey{}, func() (*counter, error) { return &counter{}, nil }); err != nil {
		t.Fatal(err)
	}
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "runctx.counterKey holds *runctx.counter, not string") {
			t.Errorf("panic %q, want one naming the key and both types", msg)
		}
	}()
	_, _ = Resource(r, counterKey{}, func() (string, error) { return "", nil })
}
