package gateway

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateLimiterBurstAndRefill(t *testing.T) {
	t.Parallel()
	l := newRateLimiter(10, 3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 3 {
		if ok, _ := l.allow(now); !ok {
			t.Fatalf("request %d within burst refused", i)
		}
	}
	ok, wait := l.allow(now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("4th request: ok=%v wait=%v, want refused for 100ms", ok, wait)
	}
	if ok, _ := l.allow(now + int64(100*time.Millisecond)); !ok {
		t.Fatal("no token after one interval")
	}
	if newRateLimiter(0, 0) != nil {
		t.Fatal("rps 0 must mean unlimited")
	}
}

func TestRateLimiterExactUnderContention(t *testing.T) {
	t.Parallel()
	l := newRateLimiter(1, 50)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if ok, _ := l.allow(now); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 50 {
		t.Fatalf("admitted %d of 200 at one instant, want the burst of 50", admitted.Load())
	}
}

func TestRingWindow(t *testing.T) {
	t.Parallel()
	var r ring
	base := int64(1_700_000_000)
	for s := range int64(90) {
		r.add(base + s)
		if s%2 == 0 {
			r.add(base + s)
		}
	}
	now := base + 89
	// Seconds 30..89: 60 seconds, 30 of them even with 2 events.
	if got := r.sum(now); got != 90 {
		t.Fatalf("sum = %d, want 90", got)
	}
	if got := r.sum(now + 60); got != 0 {
		t.Fatalf("a minute later sum = %d, want 0", got)
	}
}
