package rollout

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

func side(req, errs uint64, latency float64) SideTally {
	s := SideTally{Requests: req, Errors: errs}
	s.Bounds, s.Buckets = histogram(req, latency)
	return s
}

// TestGateVerdicts: every gate passes on good numbers, fails on a seeded
// violation and is inconclusive below its minimum sample.
func TestGateVerdicts(t *testing.T) {
	t.Parallel()
	p := fastPlan("r")
	g := p.Gates
	g.Errors.MinRequests, g.Latency.MinRequests, g.Resilience.MinRequests = 100, 100, 100
	g.Latency.MaxP99 = 400 * time.Millisecond
	step := config.RolloutStep{Percent: 5, MinDuration: time.Minute, MinRequests: 100}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good := Tally{New: side(1000, 1, 0.02), Legacy: side(3000, 3, 0.02), ShadowCompared: 500, ShadowRealDiffs: 0}
	quiet := Tally{New: side(20, 10, 0.3), Legacy: side(60, 0, 0.02), ShadowCompared: 20, ShadowRealDiffs: 20}
	for _, tc := range []struct {
		name string
		eval func(Tally) GateResult
		bad  Tally
	}{
		{"shadow", func(t Tally) GateResult { return shadowGate(g.Shadow, t) },
			Tally{ShadowCompared: 500, ShadowRealDiffs: 5}},
		{"errors", func(t Tally) GateResult { return errorGate(g.Errors, t, SideTally{}) },
			Tally{New: side(1000, 20, 0.02), Legacy: side(3000, 3, 0.02)}},
		{"latency relative", func(t Tally) GateResult { return latencyGate(g.Latency, t, SideTally{}) },
			Tally{New: side(1000, 0, 0.07), Legacy: side(3000, 0, 0.02)}},
		{"latency absolute", func(t Tally) GateResult { return latencyGate(g.Latency, t, SideTally{}) },
			Tally{New: side(1000, 0, 0.45), Legacy: side(3000, 0, 0.45)}},
		{"resilience breaker", func(t Tally) GateResult { return resilienceGate(g.Resilience, t) },
			Tally{New: side(1000, 0, 0.02), BreakerOpened: true}},
		{"resilience fallbacks", func(t Tally) GateResult { return resilienceGate(g.Resilience, t) },
			Tally{New: side(1000, 0, 0.02), Fallbacks: 1}},
		{"step", func(t Tally) GateResult { return stepGate(step, t, 2*time.Minute) }, Tally{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if r := tc.eval(good); r.Verdict != Pass {
				t.Errorf("good numbers: %s (%s)", r.Verdict, r.Detail)
			}
			if tc.name != "step" {
				if r := tc.eval(tc.bad); r.Verdict != Fail || r.Detail == "" || len(r.Thresholds) == 0 {
					t.Errorf("seeded violation: %+v, want fail with detail and thresholds", r)
				}
			}
			if tc.name == "resilience breaker" || tc.name == "resilience fallbacks" {
				return // an open breaker fails whatever the volume
			}
			if r := tc.eval(quiet); r.Verdict != Inconclusive {
				t.Errorf("quiet route: %s (%s), want inconclusive", r.Verdict, r.Detail)
			}
		})
	}

	t.Run("step needs its duration", func(t *testing.T) {
		if r := stepGate(step, good, 59*time.Second); r.Verdict != Inconclusive {
			t.Errorf("59s into a 1m step: %s", r.Verdict)
		}
	})
	t.Run("errors: 100% legacy step compares with the rollout's baseline", func(t *testing.T) {
		at100 := Tally{New: side(4000, 80, 0.02)} // legacy gets nothing at 100%
		if r := errorGate(g.Errors, at100, SideTally{}); r.Verdict != Inconclusive {
			t.Errorf("no legacy at all: %s", r.Verdict)
		}
		if r := errorGate(g.Errors, at100, side(9000, 9, 0.02)); r.Verdict != Fail {
			t.Errorf("2%% vs a 0.1%% baseline: %s (%s)", r.Verdict, r.Detail)
		}
	})
	t.Run("errors: tolerance", func(t *testing.T) {
		ge := g.Errors
		ge.Tolerance = 0.05
		bad := Tally{New: side(1000, 20, 0.02), Legacy: side(3000, 3, 0.02)}
		if r := errorGate(ge, bad, SideTally{}); r.Verdict != Pass {
			t.Errorf("2%% vs 0.1%% within a 5%% tolerance: %s", r.Verdict)
		}
	})
	t.Run("data", func(t *testing.T) {
		gd := config.DataGate{Enabled: true, MaxSyncLag: 10 * time.Second}
		start := now.Add(-time.Minute)
		cases := []struct {
			ds   DataStatus
			err  error
			want Verdict
		}{
			{DataStatus{CheckedAt: now, SyncLag: time.Second}, nil, Pass},
			{DataStatus{CheckedAt: now, Mismatches: 2}, nil, Fail},
			{DataStatus{CheckedAt: now, SyncLag: time.Minute}, nil, Fail},
			{DataStatus{CheckedAt: start.Add(-time.Second)}, nil, Inconclusive}, // reconcile older than the step
			{DataStatus{}, errors.New("acl down"), Inconclusive},
		}
		for _, c := range cases {
			if r := dataGate(gd, c.ds, c.err, start); r.Verdict != c.want {
				t.Errorf("%+v %v: %s, want %s", c.ds, c.err, r.Verdict, c.want)
			}
		}
	})
	t.Run("retire", func(t *testing.T) {
		gr := config.RetireGate{Window: time.Hour}
		onNew := now.Add(-2 * time.Hour)
		cases := []struct {
			last, since time.Time
			want        Verdict
		}{
			{time.Time{}, onNew, Pass},                        // never hit, 2h on new
			{now.Add(-30 * time.Minute), onNew, Inconclusive}, // hit 30m ago
			{now.Add(-90 * time.Minute), onNew, Pass},
			{time.Time{}, now.Add(-10 * time.Minute), Inconclusive}, // on new only 10m
		}
		for _, c := range cases {
			if r := retireGate(gr, c.last, nil, c.since, now); r.Verdict != c.want {
				t.Errorf("last %v on new since %v: %s, want %s (%s)", c.last, c.since, r.Verdict, c.want, r.Detail)
			}
		}
	})
}

// TestRunReconcilesOnItsTicker: the loop as deployed, on the real clock
// with a short plan, until its context ends.
func TestRunReconcilesOnItsTicker(t *testing.T) {
	t.Parallel()
	p := noShadow("products")
	p.Interval = 10 * time.Millisecond
	for i := range p.Steps {
		p.Steps[i].MinDuration = 20 * time.Millisecond
		p.Steps[i].MinRequests = 1
	}
	store := newMemStore()
	src := &fakeSource{store: store, cohort: "products", tr: traffic{rps: 10000, newLatency: 0.02, legacyLatency: 0.02}}
	ctl, err := New(Options{Plans: []Plan{p}, Store: store, Audit: &memAudit{}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx, 5*time.Millisecond) }()
	if _, err := ctl.Start(ctx, "products", "alice", ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := store.Load(ctx, "products")
		if st.Phase == PhaseNew {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not on new after 10s: %+v", st)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
