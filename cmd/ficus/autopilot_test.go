package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/acl/reconcile"
)

// TestReconcileCheckerFeedsTheDataGate: the data gate sees nothing until a
// reconcile finished, then its mismatches; a run is started at most once
// per `every`, off the caller's path.
func TestReconcileCheckerFeedsTheDataGate(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	runs := 0
	release := make(chan reconcile.Report)
	r := &reconcileChecker{
		ctx: context.Background(), every: time.Minute, log: slog.New(slog.DiscardHandler),
		now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		run: func(ctx context.Context, _ reconcile.Options) (reconcile.Report, error) {
			mu.Lock()
			runs++
			mu.Unlock()
			return <-release, nil
		},
	}
	if _, err := r.DataStatus(context.Background(), nil); err == nil {
		t.Fatal("a data status before any reconcile finished")
	}
	// The seeded violation: the stores differ in two entities.
	release <- reconcile.Report{Differences: make([]reconcile.Difference, 2)}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, err := r.DataStatus(context.Background(), nil)
		if err == nil {
			if ds.Mismatches != 2 || !ds.CheckedAt.Equal(now) {
				t.Fatalf("data status %+v, want 2 mismatches checked at the run's start", ds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the finished reconcile never reached the data gate")
		}
		time.Sleep(10 * time.Millisecond) // polling interval while the run's goroutine finishes
	}
	mu.Lock()
	n := runs
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d reconciles within one interval, want 1", n)
	}
	// Due again: a new run starts; the old result stands until it ends.
	if ds, _ := r.DataStatus(context.Background(), nil); ds.Mismatches != 2 {
		t.Errorf("while the next run is going: %+v", ds)
	}
	release <- reconcile.Report{}
	deadline = time.Now().Add(5 * time.Second)
	for {
		if ds, _ := r.DataStatus(context.Background(), nil); ds.Mismatches == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the clean reconcile never reached the data gate")
		}
		time.Sleep(10 * time.Millisecond) // polling interval while the run's goroutine finishes
	}
}
