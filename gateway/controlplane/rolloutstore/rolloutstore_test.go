package rolloutstore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/rollout"
)

func open(t *testing.T, path string) controlplane.Store {
	t.Helper()
	cp, err := controlplane.OpenSQLite(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Close() })
	return cp
}

func TestRolloutStateLivesInTheControlPlane(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	cp := open(t, path)
	s := New(cp)
	if _, err := s.Load(ctx, "shop"); !errors.Is(err, rollout.ErrNotFound) {
		t.Fatalf("Load of a cohort never started: %v; want ErrNotFound", err)
	}
	started := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	st := rollout.State{Cohort: "shop", Routes: []string{"products", "orders"}, Phase: rollout.PhaseCanary, Step: 1, Percent: 5, StepStartedAt: started,
		Tally: rollout.Tally{New: rollout.SideTally{Requests: 40, Errors: 1}}}
	v1, err := s.Save(ctx, st, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, st, 0); !errors.Is(err, rollout.ErrConflict) {
		t.Fatalf("second create: %v; want ErrConflict", err)
	}
	got, err := s.Load(ctx, "shop")
	if err != nil || got.Version != v1 || got.Percent != 5 || got.Tally.New.Errors != 1 || !got.StepStartedAt.Equal(started) {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	snap, _ := cp.Snapshot(ctx)
	for _, r := range []string{"products", "orders"} {
		rs := snap.Routes[r]
		if rs.Canary == nil || *rs.Canary != 5 || *rs.CohortPercent != 5 || rs.Rollout == nil || rs.Rollout.Phase != "canary" || rs.Rollout.Step != 1 || rs.Version != v1 {
			t.Fatalf("route %s = %+v; want canary 5 with the rollout summary at version %d", r, rs, v1)
		}
	}

	// A rollback pins legacy; a stale writer conflicts and changes nothing.
	back := got
	back.Phase, back.Percent, back.PinnedLegacy, back.Reason = rollout.PhaseRolledBack, 0, true, "error gate failed"
	v2, err := s.Save(ctx, back, got.Version)
	if err != nil {
		t.Fatal(err)
	}
	stale := got
	stale.Percent = 25
	if _, err := s.Save(ctx, stale, got.Version); !errors.Is(err, rollout.ErrConflict) {
		t.Fatalf("stale save: %v; want ErrConflict", err)
	}
	snap, _ = cp.Snapshot(ctx)
	if p := snap.Routes["products"]; p.PinValue() != controlplane.PinLegacy || *p.Canary != 0 || p.Version != v2 {
		t.Fatalf("after the rollback products = %+v", p)
	}
	// Restarting the rollout lifts the autopilot's own pin.
	again, _ := s.Load(ctx, "shop")
	again.Phase, again.PinnedLegacy, again.Percent = rollout.PhaseShadow, false, 0
	if _, err := s.Save(ctx, again, again.Version); err != nil {
		t.Fatal(err)
	}
	snap, _ = cp.Snapshot(ctx)
	if p := snap.Routes["products"]; p.PinValue() != controlplane.PinNone {
		t.Fatalf("pin after a restart of the rollout: %q", p.PinValue())
	}
	// Route changes are audited as the autopilot's; the cohort's
	// per-interval record is not; transitions come through Record.
	if err := s.Record(ctx, rollout.Record{Actor: "alice", Cohort: "shop", Action: "abort", FromPhase: rollout.PhaseCanary, ToPhase: rollout.PhaseRolledBack, Reason: "by hand"}); err != nil {
		t.Fatal(err)
	}
	es, _ := cp.Audit(ctx, controlplane.AuditQuery{Limit: 1000})
	for _, e := range es {
		if e.Route == Key("shop") {
			t.Fatalf("bookkeeping was audited: %+v", e)
		}
	}
	if es[0].Actor != "alice" || es[0].Field != "rollout:abort" || es[0].Route != "shop" || !strings.Contains(string(es[0].New), `"rolled-back"`) {
		t.Fatalf("transition entry %+v", es[0])
	}
	if es[1].Actor != rollout.ActorAutopilot {
		t.Fatalf("route change entry %+v", es[1])
	}

	// A restart: a new store on the same file reads the state mid-rollout.
	_ = cp.Close()
	st2, err := New(open(t, path)).Load(ctx, "shop")
	if err != nil || st2.Phase != rollout.PhaseShadow || st2.Cohort != "shop" {
		t.Fatalf("after a restart: %+v, %v", st2, err)
	}
}
