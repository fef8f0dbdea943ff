package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/internal/pgdb"
	"github.com/ficus-gw/ficus/internal/pgtest"
)

// opener opens the store under test; calling it again opens the same
// stored state (a restart).
type opener func(t *testing.T) Store

func TestSQLiteContract(t *testing.T) {
	runContract(t, func(t *testing.T) opener {
		path := filepath.Join(t.TempDir(), "cp.db")
		return func(t *testing.T) Store {
			s, err := OpenSQLite(context.Background(), path, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	})
}

func TestPostgresContract(t *testing.T) {
	srv := pgtest.New(t)
	var n atomic.Int64
	runContract(t, func(t *testing.T) opener {
		db := fmt.Sprintf("contract_%d", n.Add(1))
		if err := srv.CreateDB(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		return func(t *testing.T) Store { return openPG(t, srv.DSN(db)) }
	})
}

func openPG(t *testing.T, dsn string) Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgdb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenPostgres(ctx, PostgresOptions{Pool: pool})
	if err != nil {
		pool.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(); pool.Close() })
	return s
}

func pct(v float64) *float64 { return &v }
func str(v string) *string   { return &v }

func runContract(t *testing.T, fresh func(t *testing.T) opener) {
	ctx := context.Background()
	t.Run("a change is typed, versioned and audited", func(t *testing.T) {
		s := fresh(t)(t)
		snap, err := s.Snapshot(ctx)
		if err != nil || snap.Version != 0 || len(snap.Routes) != 0 {
			t.Fatalf("fresh store: %+v, %v; want version 0, no routes", snap, err)
		}
		res, err := s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(25)}, Actor: "alice", Reason: "step 2", RequestID: "r1"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.Version != 1 || *res.State.Canary != 25 || res.State.Version != 1 {
			t.Fatalf("result %+v; want changed at version 1 with canary 25", res)
		}
		if len(res.Audit) != 1 || res.Audit[0].Field != FieldCanary || string(res.Audit[0].Old) != "null" || string(res.Audit[0].New) != "25" {
			t.Fatalf("audit %+v; want canaryPercent null -> 25", res.Audit)
		}
		res, err = s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(50), Pin: str(PinLegacy)}, Actor: "bob", Reason: "incident"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != 2 || len(res.Audit) != 2 {
			t.Fatalf("two fields in one change: %+v; want version 2 and two audit entries", res)
		}
		es, err := s.Audit(ctx, AuditQuery{Route: "products"})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 3 || es[0].Field != FieldPin || string(es[0].Old) != `""` || string(es[0].New) != `"legacy"` ||
			es[1].Actor != "bob" || string(es[1].Old) != "25" || string(es[1].New) != "50" || es[2].RequestID != "r1" {
			t.Fatalf("audit log %+v", es)
		}
		if v, err := s.Version(ctx); err != nil || v != 2 {
			t.Fatalf("Version() = %d, %v; want 2", v, err)
		}
	})

	t.Run("setting the value it has is a no-op without an audit entry", func(t *testing.T) {
		s := fresh(t)(t)
		ch := Change{Route: "orders", Set: Patch{Canary: pct(10)}, Actor: "alice", Reason: "r"}
		if _, err := s.Apply(ctx, ch); err != nil {
			t.Fatal(err)
		}
		res, err := s.Apply(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed || res.Version != 1 || len(res.Audit) != 0 {
			t.Fatalf("repeat: %+v; want unchanged at version 1", res)
		}
		// Unpinning a route that was never pinned changes nothing either.
		if res, err := s.Apply(ctx, Change{Route: "orders", Set: Patch{Pin: str(PinNone)}, Actor: "alice", Reason: "r"}); err != nil || res.Changed {
			t.Fatalf("unpin of an unpinned route: %+v, %v", res, err)
		}
		if es, _ := s.Audit(ctx, AuditQuery{}); len(es) != 1 {
			t.Fatalf("%d audit entries; want 1", len(es))
		}
	})

	t.Run("a stale expected version conflicts and carries the current state", func(t *testing.T) {
		s := fresh(t)(t)
		r1, _ := s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(5)}, Actor: "a", Reason: "r"})
		r2, err := s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(10)}, ExpectVersion: r1.Version, Actor: "a", Reason: "r"})
		if err != nil {
			t.Fatalf("expecting the current version: %v", err)
		}
		_, err = s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(99)}, ExpectVersion: r1.Version, Actor: "b", Reason: "r"})
		var ce *ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
			t.Fatalf("stale write: %v; want a *ConflictError", err)
		}
		if *ce.Current.Canary != 10 || ce.Current.Version != r2.Version || ce.Version != r2.Version {
			t.Fatalf("conflict carries %+v at %d; want canary 10 at %d", ce.Current, ce.Version, r2.Version)
		}
		// Another route's change does not make this route's version stale.
		if _, err := s.Apply(ctx, Change{Route: "orders", Set: Patch{Canary: pct(1)}, Actor: "a", Reason: "r"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(20)}, ExpectVersion: r2.Version, Actor: "a", Reason: "r"}); err != nil {
			t.Fatalf("route unchanged since version %d: %v", r2.Version, err)
		}
		snap, _ := s.Snapshot(ctx)
		if *snap.Routes["products"].Canary != 20 || snap.Version != 4 {
			t.Fatalf("snapshot %+v", snap)
		}
	})

	t.Run("of two concurrent writers expecting one version exactly one wins", func(t *testing.T) {
		open := fresh(t)
		s1, s2 := open(t), open(t) // two replicas
		base, err := s1.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(1)}, Actor: "a", Reason: "r"})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 5 {
			var wins, conflicts atomic.Int64
			var wg sync.WaitGroup
			for i, s := range []Store{s1, s2, s1, s2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(float64(10*round + i + 2))}, ExpectVersion: base.Version, Actor: "w", Reason: "r"})
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrConflict):
						conflicts.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 || conflicts.Load() != 3 {
				t.Fatalf("round %d: %d wins, %d conflicts; want 1 and 3", round, wins.Load(), conflicts.Load())
			}
			snap, _ := s2.Snapshot(ctx)
			base = Result{Version: snap.Routes["products"].Version}
		}
	})

	t.Run("a restart restores typed state including an in-progress rollout", func(t *testing.T) {
		open := fresh(t)
		s := open(t)
		started := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
		ro := &Rollout{Schema: 1, Phase: "canary", Step: 2, StepStartedAt: started, Detail: json.RawMessage(`{"plan":"fast"}`)}
		if _, err := s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(25), CohortPercent: pct(25), Rollout: ro, Pin: str(PinNew)}, Actor: "autopilot", Reason: "step 3"}); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		snap, err := open(t).Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := snap.Routes["products"]
		if *got.Canary != 25 || *got.CohortPercent != 25 || got.PinValue() != PinNew || !got.Rollout.Equal(ro) || !got.Rollout.StepStartedAt.Equal(started) {
			t.Fatalf("after restart %+v (rollout %+v)", got, got.Rollout)
		}
		// The same rollout record again is a no-op; clearing it is a change.
		s2 := open(t)
		if res, err := s2.Apply(ctx, Change{Route: "products", Set: Patch{Rollout: ro}, Actor: "autopilot", Reason: "r"}); err != nil || res.Changed {
			t.Fatalf("same rollout: %+v, %v", res, err)
		}
		res, err := s2.Apply(ctx, Change{Route: "products", Set: Patch{ClearRollout: true}, Actor: "autopilot", Reason: "done"})
		if err != nil || !res.Changed || res.State.Rollout != nil || string(res.Audit[0].New) != "null" {
			t.Fatalf("clear rollout: %+v, %v", res, err)
		}
	})

	t.Run("invalid changes are refused and write nothing", func(t *testing.T) {
		s := fresh(t)(t)
		for _, ch := range []Change{
			{Route: "", Set: Patch{Canary: pct(1)}, Actor: "a"},
			{Route: "p", Set: Patch{Canary: pct(101)}, Actor: "a"},
			{Route: "p", Set: Patch{CohortPercent: pct(-1)}, Actor: "a"},
			{Route: "p", Set: Patch{Pin: str("sideways")}, Actor: "a"},
			{Route: "p", Set: Patch{Canary: pct(1)}},
		} {
			if _, err := s.Apply(ctx, ch); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v; want ErrInvalid", ch, err)
			}
		}
		if v, _ := s.Version(ctx); v != 0 {
			t.Fatalf("version %d after refused changes; want 0", v)
		}
	})

	t.Run("records and queries audit entries that change no state", func(t *testing.T) {
		s := fresh(t)(t)
		_, _ = s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(3)}, Actor: "a", Reason: "r"})
		e, err := s.Record(ctx, AuditEntry{Actor: "flags-file", Field: FieldFlags, Reason: "reloaded", Old: json.RawMessage(`{"sha256":"a"}`), New: json.RawMessage(`{"sha256":"b"}`)})
		if err != nil || e.ID == 0 || e.Version != 1 {
			t.Fatalf("Record: %+v, %v", e, err)
		}
		all, _ := s.Audit(ctx, AuditQuery{})
		one, _ := s.Audit(ctx, AuditQuery{Limit: 1})
		prod, _ := s.Audit(ctx, AuditQuery{Route: "products"})
		future, _ := s.Audit(ctx, AuditQuery{From: time.Now().Add(time.Hour)})
		if len(all) != 2 || len(one) != 1 || one[0].Field != FieldFlags || len(prod) != 1 || len(future) != 0 {
			t.Fatalf("queries: all %d, limit1 %+v, route %d, future %d", len(all), one, len(prod), len(future))
		}
		if v, _ := s.Version(ctx); v != 1 {
			t.Fatalf("Record moved the version to %d", v)
		}
	})

	t.Run("a batch is written under one version, all or nothing", func(t *testing.T) {
		s := fresh(t)(t)
		base, _ := s.Apply(ctx, Change{Route: "orders", Set: Patch{Canary: pct(1)}, Actor: "a", Reason: "r"})
		rs, err := s.ApplyBatch(ctx, []Change{
			{Route: "cohort:shop", Set: Patch{Rollout: &Rollout{Schema: 1, Phase: "canary"}}, MustNotExist: true, Quiet: true, Actor: "autopilot"},
			{Route: "products", Set: Patch{Canary: pct(5), CohortPercent: pct(5)}, Actor: "autopilot", Reason: "step 1"},
			{Route: "orders", Set: Patch{Canary: pct(5), CohortPercent: pct(5)}, Actor: "autopilot", Reason: "step 1", ExpectVersion: base.Version},
		})
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Version != 2 || rs[1].Version != 2 || rs[2].Version != 2 || len(rs[0].Audit) != 0 || len(rs[1].Audit) != 2 {
			t.Fatalf("batch results %+v; want one version 2, the quiet change unaudited", rs)
		}
		// One stale change (and one create-only on an existing route) fail the whole batch.
		for _, bad := range [][]Change{
			{{Route: "products", Set: Patch{Canary: pct(50)}, Actor: "a"}, {Route: "orders", Set: Patch{Canary: pct(50)}, ExpectVersion: base.Version, Actor: "a"}},
			{{Route: "products", Set: Patch{Canary: pct(50)}, Actor: "a"}, {Route: "cohort:shop", Set: Patch{Rollout: &Rollout{Phase: "x"}}, MustNotExist: true, Actor: "a"}},
		} {
			if _, err := s.ApplyBatch(ctx, bad); !errors.Is(err, ErrConflict) {
				t.Fatalf("batch with a stale change: %v; want a conflict", err)
			}
		}
		snap, _ := s.Snapshot(ctx)
		if snap.Version != 2 || *snap.Routes["products"].Canary != 5 || snap.Routes["cohort:shop"].Rollout.Phase != "canary" {
			t.Fatalf("after refused batches: %+v", snap)
		}
		if _, err := s.ApplyBatch(ctx, []Change{{Route: "a", Set: Patch{Canary: pct(1)}, Actor: "x"}, {Route: "a", Set: Patch{Canary: pct(2)}, Actor: "x"}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a route twice in a batch: %v", err)
		}
	})

	t.Run("a write signals Changed", func(t *testing.T) {
		s := fresh(t)(t)
		drain(s.Changed())
		if _, err := s.Apply(ctx, Change{Route: "x", Set: Patch{Canary: pct(7)}, Actor: "a", Reason: "r"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.Changed():
		case <-time.After(5 * time.Second):
			t.Fatal("no change signal after a write")
		}
	})
}

func drain(c <-chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
