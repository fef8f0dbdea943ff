package catalog

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/newsvc/outbox"
)

func openTestService(t *testing.T) *Service {
	t.Helper()
	s, err := Open(context.Background(), Config{DBPath: filepath.Join(t.TempDir(), "c.db"), RateLimit: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestEventAndStateShareTheTransaction(t *testing.T) {
	t.Parallel()
	s := openTestService(t)
	ctx := context.Background()
	errLate := errors.New("failure after the event was appended")
	err := s.write(ctx, reqMeta{requestID: "r1"}, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO products (`+productColumns+`) VALUES ('X-1','n','','c',1,'EUR',1,1,'2026-01-01T00:00:00.000000000Z')`); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, reqMeta{requestID: "r1"}, EventProductUpdated, "X-1", map[string]string{"sku": "X-1"}, time.Now()); err != nil {
			return err
		}
		return errLate
	})
	if !errors.Is(err, errLate) {
		t.Fatalf("write = %v", err)
	}
	events, err := outbox.Events(ctx, s.db.R, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, perr := getProduct(ctx, s.db.R, "X-1"); len(events) != 0 || !errors.Is(perr, errNoProduct) {
		t.Fatalf("a failed write left %d events and product error %v", len(events), perr)
	}
}

func TestBucketRefillsAtTheConfiguredRate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := newBucket(10, 3, clock)
	for i := range 3 {
		if ok, _ := b.take(); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait := b.take()
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v wait=%v, want refusal and 100ms", ok, wait)
	}
	advance(250 * time.Millisecond) // 2.5 tokens
	for i := range 2 {
		if ok, _ := b.take(); !ok {
			t.Fatalf("refilled token %d refused", i)
		}
	}
	if ok, _ := b.take(); ok {
		t.Fatal("half a token was spent")
	}
	advance(time.Hour)
	got := 0
	for {
		if ok, _ := b.take(); !ok {
			break
		}
		got++
	}
	if got != 3 {
		t.Errorf("after a long idle the bucket held %d tokens, want the burst 3", got)
	}
	if s := retryAfterSeconds(100 * time.Millisecond); s != 1 {
		t.Errorf("Retry-After for 100ms = %d, want 1", s)
	}
	if s := retryAfterSeconds(2100 * time.Millisecond); s != 3 {
		t.Errorf("Retry-After for 2.1s = %d, want 3", s)
	}
}

func TestExpiredIdempotencyKeysArePruned(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s, err := Open(context.Background(), Config{DBPath: filepath.Join(t.TempDir(), "c.db"), RateLimit: -1,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	p := Product{SKU: "P-1", Name: "n", Category: "c", Price: Money{AmountMinor: 1, Currency: "EUR"}, Stock: 100}
	if _, err := s.upsertProduct(ctx, reqMeta{requestID: "r"}, p, nil); err != nil {
		t.Fatal(err)
	}
	adjust := func(key string) {
		t.Helper()
		if _, err := s.adjustStock(ctx, reqMeta{requestID: "r"}, "P-1", key, adjustment{Delta: -1, Reason: "correction"}); err != nil {
			t.Fatal(err)
		}
	}
	adjust("old")
	mu.Lock()
	now = now.Add(23 * time.Hour)
	mu.Unlock()
	adjust("young")
	mu.Lock()
	now = now.Add(2 * time.Hour) // "old" is 25 h old, "young" 2 h
	mu.Unlock()
	n, err := s.pruneIdempotencyKeys(ctx)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want only the expired key", n, err)
	}
	var left string
	if err := s.db.R.QueryRowContext(ctx, `SELECT key FROM idempotency_keys`).Scan(&left); err != nil || left != "young" {
		t.Errorf("remaining key %q (%v), want young", left, err)
	}
}
