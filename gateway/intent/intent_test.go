package intent_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/gateway/intent"
	"github.com/ficus-gw/ficus/internal/pgtest"
)

// ledgerContract is run against every Ledger implementation.
func ledgerContract(t *testing.T, open func(t *testing.T) intent.Ledger) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

	t.Run("a retry goes where the first attempt went", func(t *testing.T) {
		l := open(t)
		c1, err := l.Acquire(ctx, "orders", "k1", "new", now)
		if err != nil || c1.Side != "new" || c1.Attempt != 1 || !c1.First {
			t.Fatalf("first attempt: %+v %v", c1, err)
		}
		// The canary moved to 0 meanwhile: the decision says legacy.
		c2, err := l.Acquire(ctx, "orders", "k1", "legacy", now)
		if err != nil || c2.Side != "new" || c2.Attempt != 2 || c2.First {
			t.Fatalf("retry: %+v %v, want side new attempt 2", c2, err)
		}
		// The same key on another route is another intent.
		if c, _ := l.Acquire(ctx, "payments", "k1", "legacy", now); c.Side != "legacy" || c.ID == c1.ID {
			t.Fatalf("other route: %+v", c)
		}
	})

	t.Run("a key moves only when no attempt reached its side", func(t *testing.T) {
		l := open(t)
		c1, _ := l.Acquire(ctx, "orders", "k2", "new", now)
		out, err := l.Unsent(ctx, c1, "legacy", now)
		if err != nil || out != intent.Moved {
			t.Fatalf("only attempt unsent: %v %v, want moved", out, err)
		}
		c2, _ := l.Acquire(ctx, "orders", "k2", "new", now)
		if c2.Side != "legacy" || c2.Attempt != 2 {
			t.Fatalf("after the move the key belongs to legacy (the moved attempt was its first): %+v", c2)
		}
		// k3: the first attempt may have booked (a timeout), the second
		// finds the new side down: the key must stay on new.
		a1, _ := l.Acquire(ctx, "orders", "k3", "new", now)
		_ = a1 // timed out: may have reached the side, so no Unsent
		a2, _ := l.Acquire(ctx, "orders", "k3", "legacy", now)
		if out, _ := l.Unsent(ctx, a2, "legacy", now); out != intent.Kept {
			t.Fatalf("second attempt unsent after a sent first: %v, want kept", out)
		}
		if c, _ := l.Acquire(ctx, "orders", "k3", "legacy", now); c.Side != "new" {
			t.Fatalf("k3 moved to %s although its first attempt may have booked", c.Side)
		}
	})

	t.Run("concurrent attempts: a move needs every attempt unsent", func(t *testing.T) {
		l := open(t)
		a1, _ := l.Acquire(ctx, "orders", "k4", "new", now)
		a2, _ := l.Acquire(ctx, "orders", "k4", "new", now) // a second replica, same moment
		if out, _ := l.Unsent(ctx, a1, "legacy", now); out != intent.Kept {
			t.Fatalf("a1 unsent while a2 is out: %v, want kept", out)
		}
		if out, _ := l.Unsent(ctx, a2, "legacy", now); out != intent.Moved {
			t.Fatalf("both unsent: %v, want moved", out)
		}
	})

	t.Run("release frees a key nobody received", func(t *testing.T) {
		l := open(t)
		c, _ := l.Acquire(ctx, "orders", "k5", "legacy", now)
		if out, _ := l.Unsent(ctx, c, "", now); out != intent.Released {
			t.Fatalf("unsent without fallback: %v, want released", out)
		}
		if c, _ := l.Acquire(ctx, "orders", "k5", "new", now); c.Side != "new" || !c.First {
			t.Fatalf("after release the next attempt decides afresh: %+v", c)
		}
		// A stale claim (from before the release) changes nothing.
		if out, _ := l.Unsent(ctx, intent.Claim{ID: c.ID, Side: "legacy", Attempt: 1}, "", now); out != intent.Kept {
			t.Fatalf("stale claim: %v", out)
		}
		if c2, _ := l.Acquire(ctx, "orders", "k5", "legacy", now); c2.Side != "new" {
			t.Fatalf("stale claim moved the key: %+v", c2)
		}
	})

	t.Run("many replicas racing on one key agree", func(t *testing.T) {
		l := open(t)
		var wg sync.WaitGroup
		sides := make([]string, 16)
		for i := range sides {
			wg.Add(1)
			go func() {
				defer wg.Done()
				proposed := "legacy"
				if i%2 == 0 {
					proposed = "new"
				}
				c, err := l.Acquire(ctx, "orders", "race", proposed, now)
				if err != nil {
					t.Error(err)
				}
				sides[i] = c.Side
			}()
		}
		wg.Wait()
		for _, s := range sides {
			if s != sides[0] {
				t.Fatalf("replicas disagree on one key: %v", sides)
			}
		}
	})

	t.Run("prune forgets old keys", func(t *testing.T) {
		l := open(t)
		_, _ = l.Acquire(ctx, "orders", "old", "new", now.Add(-72*time.Hour))
		_, _ = l.Acquire(ctx, "orders", "young", "new", now)
		n, err := l.Prune(ctx, now.Add(-48*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
		if c, _ := l.Acquire(ctx, "orders", "old", "legacy", now); c.Side != "legacy" {
			t.Fatalf("pruned key still held: %+v", c)
		}
		if c, _ := l.Acquire(ctx, "orders", "young", "legacy", now); c.Side != "new" {
			t.Fatalf("young key lost: %+v", c)
		}
	})
}

func TestSQLiteLedger(t *testing.T) {
	t.Parallel()
	ledgerContract(t, func(t *testing.T) intent.Ledger {
		l, err := intent.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "intents.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	})
}

// Two gateway processes on one host share the file: what one claims, the
// other sees.
func TestSQLiteLedgerSharedByTwoOpeners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "intents.db")
	a, err := intent.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := intent.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now()
	if c, _ := a.Acquire(ctx, "orders", "k", "new", now); c.Side != "new" {
		t.Fatal(c)
	}
	if c, _ := b.Acquire(ctx, "orders", "k", "legacy", now); c.Side != "new" || c.Attempt != 2 {
		t.Fatalf("replica b: %+v", c)
	}
}

func TestClosedLedgerIsUnavailable(t *testing.T) {
	t.Parallel()
	l, err := intent.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "intents.db"))
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if _, err := l.Acquire(context.Background(), "orders", "k", "new", time.Now()); !errors.Is(err, intent.ErrUnavailable) {
		t.Fatalf("closed ledger: %v, want ErrUnavailable", err)
	}
}

// The fleet's ledger on a real PostgreSQL: the same contract, and two
// replicas (two pools) racing on one key agree.
func TestPostgresLedger(t *testing.T) {
	t.Parallel()
	srv := pgtest.New(t)
	ctx := context.Background()
	n := 0
	ledgerContract(t, func(t *testing.T) intent.Ledger {
		n++
		l, err := intent.OpenPostgres(ctx, srv.Pool(t, fmt.Sprintf("intents%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func TestPostgresLedgerSharedByTwoReplicas(t *testing.T) {
	t.Parallel()
	srv := pgtest.New(t)
	ctx := context.Background()
	open := func() intent.Ledger {
		l, err := intent.OpenPostgres(ctx, srv.Pool(t, "fleet"))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := open(), open()
	now := time.Now()
	var wg sync.WaitGroup
	sides := make([]string, 20)
	for i := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, proposed := a, "new"
			if i%2 == 1 {
				l, proposed = b, "legacy"
			}
			c, err := l.Acquire(ctx, "orders", "shared", proposed, now)
			if err != nil {
				t.Error(err)
			}
			sides[i] = c.Side
		}()
	}
	wg.Wait()
	for _, s := range sides {
		if s != sides[0] {
			t.Fatalf("two replicas disagree on one key: %v", sides)
		}
	}
	// The database going away makes the ledger unavailable, not wrong.
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(ctx, "orders", "k", "new", now); !errors.Is(err, intent.ErrUnavailable) {
		t.Fatalf("database down: %v, want ErrUnavailable", err)
	}
}
