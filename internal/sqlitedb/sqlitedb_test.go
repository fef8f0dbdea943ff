package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var steps = []Migration{
	{Name: "accounts", SQL: `CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))`},
	{Name: "seed", SQL: `INSERT INTO accounts(id, balance) VALUES (1, 100)`},
}

func open(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestMigrateAppliesEachStepOnce(t *testing.T) {
	t.Parallel()
	db, path := open(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := db.Migrate(ctx, steps); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	var n int
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("seed applied %d times (%v), want once", n, err)
	}
	db.Close()

	// A build that knows fewer steps than the file has must refuse it.
	old, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	err = old.Migrate(ctx, steps[:1])
	if err == nil || !strings.Contains(err.Error(), "schema version 2 but this build knows only 1") {
		t.Fatalf("want a clear downgrade error, got %v", err)
	}
}

func TestTxRollsBackOnErrorAndPanic(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	ctx := context.Background()
	if err := db.Migrate(ctx, steps); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE accounts SET balance = 0 WHERE id = 1`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx returned %v, want the callback's error", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not propagate")
			}
		}()
		_ = db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`UPDATE accounts SET balance = 0 WHERE id = 1`); err != nil {
				return err
			}
			panic("mid-transaction")
		})
	}()
	var bal int
	if err := db.R.QueryRow(`SELECT balance FROM accounts WHERE id = 1`).Scan(&bal); err != nil || bal != 100 {
		t.Fatalf("balance %d (%v) after failed transactions, want 100", bal, err)
	}
}

// TestConcurrentWritersNeverOverdraw is the reason for IMMEDIATE
// transactions: 40 writers each take 10 from 100; exactly 10 succeed, none
// fails with SQLITE_BUSY, and the balance never goes negative.
func TestConcurrentWritersNeverOverdraw(t *testing.T) {
	t.Parallel()
	db, _ := open(t)
	ctx := context.Background()
	if err := db.Migrate(ctx, steps); err != nil {
		t.Fatal(err)
	}
	errInsufficient := errors.New("insufficient")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	var other []error
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				var bal int
				if err := tx.QueryRow(`SELECT balance FROM accounts WHERE id = 1`).Scan(&bal); err != nil {
					return err
				}
				if bal < 10 {
					return errInsufficient
				}
				_, err := tx.Exec(`UPDATE accounts SET balance = ? WHERE id = 1`, bal-10)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, errInsufficient):
				refused++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if ok != 10 || refused != 30 || len(other) != 0 {
		t.Fatalf("ok=%d refused=%d other=%v; want 10, 30, none", ok, refused, other)
	}
}
