package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func actions(recs []Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Action+":"+string(r.ToPhase)+"@"+strings.TrimSuffix(strings.TrimSuffix(jsonNum(r.ToPercent), ".0"), ".00"))
	}
	return strings.Join(s, " ")
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

// TestHealthyRolloutGoesAllTheWay: shadow, three canary steps, new, retired;
// each move audited, each step held for its minimum duration.
func TestHealthyRolloutGoesAllTheWay(t *testing.T) {
	t.Parallel()
	r := newRig(t, fastPlan("products"))
	r.ctl.o.Legacy = legacyQuietSince{}
	start := r.clock.Now()
	r.start()
	st := r.until(800, func(s State) bool { return s.Phase == PhaseRetired })
	got := actions(r.audit.all())
	want := "start:shadow@0 advance:canary@1 advance:canary@25 advance:canary@100 advance:new@100 retire:retired@100"
	if got != want {
		t.Fatalf("transitions:\n got %s\nwant %s", got, want)
	}
	recs := r.audit.all()
	for i := 2; i < 5; i++ {
		if d := recs[i].Time.Sub(recs[i-1].Time); d < time.Minute {
			t.Errorf("%s after %v in the previous step, want >= 1m", recs[i].Action, d)
		}
		if recs[i].Actor != ActorAutopilot {
			t.Errorf("actor %q, want autopilot", recs[i].Actor)
		}
	}
	if recs[0].Actor != "alice" {
		t.Errorf("start actor %q, want alice", recs[0].Actor)
	}
	if st.PinnedLegacy || st.Percent != 100 {
		t.Errorf("final state %+v", st)
	}
	// retired only after an hour on new without a legacy hit
	if d := recs[5].Time.Sub(recs[4].Time); d < time.Hour {
		t.Errorf("retired %v after reaching new, want >= the 1h window", d)
	}
	if v := testutil.ToFloat64(r.ctl.o.Metrics.phase.WithLabelValues("products", "retired")); v != 1 {
		t.Errorf("%s{phase=retired} = %v, want 1", MetricPhase, v)
	}
	if v := testutil.ToFloat64(r.ctl.o.Metrics.checks.WithLabelValues("products", GateErrors, "pass")); v == 0 {
		t.Errorf("no passing error-gate checks counted")
	}
	t.Logf("whole rollout took %v of fake time", r.clock.Now().Sub(start))
}

type legacyQuietSince struct{}

func (legacyQuietSince) LegacyLastHit(context.Context, []string) (time.Time, error) {
	return time.Time{}, nil
}

// TestQuietRouteNeverPasses: two requests a minute never satisfy a gate's
// minimum sample; the cohort stays at its first step with inconclusive
// verdicts, however long it waits.
func TestQuietRouteNeverPasses(t *testing.T) {
	t.Parallel()
	p := fastPlan("products")
	p.Gates.Shadow.Disabled = true
	p.Gates.Errors.MinRequests = 100
	p.Steps[0].MinRequests = 100
	r := newRig(t, p)
	r.source.set(traffic{rps: 2.0 / 60 * 100, newErrRate: 0.5}) // new side: 2 requests a minute at 1%, half failing
	r.start()
	for range 360 { // an hour
		r.tick()
	}
	st := r.store.state(t, "products")
	if st.Phase != PhaseCanary || st.Step != 0 {
		t.Fatalf("quiet route moved: %+v", st)
	}
	for _, g := range st.Gates {
		if g.Gate == GateErrors && g.Verdict != Inconclusive {
			t.Fatalf("error gate on %v new requests: %s, want inconclusive", g.Measured["newRequests"], g.Verdict)
		}
	}
	if s, _ := r.ctl.Status(context.Background(), "products"); s.Condition != CondProgressing || !strings.Contains(s.Next, "errors:") {
		t.Errorf("status %q %q, want progressing and waiting on the error gate", s.Condition, s.Next)
	}
}

// reachStep starts a shadow-less rollout and ticks until it is at step i.
func reachStep(r *rig, i int) State {
	r.t.Helper()
	r.start()
	return r.until(100, func(s State) bool { return s.Phase == PhaseCanary && s.Step == i })
}

func noShadow(routes ...string) Plan {
	p := fastPlan(routes...)
	p.Gates.Shadow.Disabled = true
	return p
}

// TestErrorGateRollsBackWithinOneInterval is the drill: at 25%, 5% of the
// new side's answers start failing; the very next evaluation rolls the
// cohort back to 0 and pins legacy, audited with the gate's numbers, and it
// stays there.
func TestErrorGateRollsBackWithinOneInterval(t *testing.T) {
	t.Parallel()
	r := newRig(t, noShadow("products"))
	reachStep(r, 1)
	r.tick() // a healthy interval at 25%
	bad := healthy
	bad.rps = 200
	bad.newErrRate = 0.05
	r.source.set(bad)
	st := r.tick()
	if st.Phase != PhaseRolledBack || st.Percent != 0 || !st.PinnedLegacy {
		t.Fatalf("one interval after the fault: %+v, want rolled-back at 0, pinned", st)
	}
	recs := r.audit.all()
	last := recs[len(recs)-1]
	if last.Action != "rollback" || last.Actor != ActorAutopilot || last.Gate != GateErrors || last.FromPercent != 25 {
		t.Fatalf("audit %+v", last)
	}
	var eg *GateResult
	for i := range last.Gates {
		if last.Gates[i].Gate == GateErrors {
			eg = &last.Gates[i]
		}
	}
	if eg == nil || eg.Verdict != Fail || eg.Measured["newErrorRate"] < 0.03 || eg.Thresholds["alpha"] != 0.01 || eg.Measured["pValue"] >= 0.01 {
		t.Fatalf("audited error gate %+v, want fail with measured rate, p-value and alpha", eg)
	}
	if v := testutil.ToFloat64(r.ctl.o.Metrics.rollbacks.WithLabelValues("products", GateErrors)); v != 1 {
		t.Errorf("%s = %v, want 1", MetricRollbacks, v)
	}
	if v := testutil.ToFloat64(r.ctl.o.Metrics.percent.WithLabelValues("products")); v != 0 {
		t.Errorf("%s = %v, want 0", MetricStepPercent, v)
	}
	// It stays put: healthy traffic again, many intervals, no move.
	r.source.set(healthy)
	n := len(r.audit.all())
	for range 50 {
		r.tick()
	}
	if st := r.store.state(t, "products"); st.Phase != PhaseRolledBack || len(r.audit.all()) != n {
		t.Fatalf("a rolled-back cohort moved on its own: %+v", st)
	}
	s, err := r.ctl.Status(context.Background(), "products")
	if err != nil || s.Condition != CondRolledBack || s.Condition.ExitCode() != 4 || !strings.Contains(s.Next, "errors failed") {
		t.Fatalf("status %+v %v", s, err)
	}
	// The operator resumes: back to the first step (rollback was to legacy).
	st, err = r.ctl.Resume(context.Background(), "products", "alice", "fixed")
	if err != nil || st.Phase != PhaseCanary || st.Step != 0 || st.PinnedLegacy {
		t.Fatalf("resume: %+v %v", st, err)
	}
}

func TestRollbackToPreviousStep(t *testing.T) {
	t.Parallel()
	p := noShadow("products")
	p.Rollback = "previous"
	r := newRig(t, p)
	reachStep(r, 1)
	bad := healthy
	bad.breakerOpen = true
	r.source.set(bad)
	st := r.tick()
	if st.Phase != PhaseRolledBack || st.Step != 0 || st.Percent != 1 || st.PinnedLegacy {
		t.Fatalf("state %+v, want rolled-back to step 0 at 1%%, not pinned", st)
	}
	if last := r.audit.all()[len(r.audit.all())-1]; last.Gate != GateResilience {
		t.Fatalf("failing gate %q, want resilience", last.Gate)
	}
	st, err := r.ctl.Resume(context.Background(), "products", "alice", "")
	if err != nil || st.Step != 0 || st.Percent != 1 || st.Phase != PhaseCanary {
		t.Fatalf("resume: %+v %v", st, err)
	}
}

func TestLatencyGateRollsBack(t *testing.T) {
	t.Parallel()
	r := newRig(t, noShadow("products"))
	reachStep(r, 1)
	slow := healthy
	slow.newLatency = 0.2 // legacy 20 ms
	r.source.set(slow)
	st := r.tick()
	last := r.audit.all()[len(r.audit.all())-1]
	if st.Phase != PhaseRolledBack || last.Gate != GateLatency {
		t.Fatalf("state %s, gate %q; want rolled back by latency", st.Phase, last.Gate)
	}
}

// TestShadowGateBlocksUntilFixed: real differences in the shadow phase hold
// the cohort (no user moves, no rollback); once the differences stop (an
// ignore rule, a fix), fresh pairs pass and the canary starts.
func TestShadowGateBlocksUntilFixed(t *testing.T) {
	t.Parallel()
	r := newRig(t, fastPlan("products"))
	diff := healthy
	diff.shadowReal = 1
	r.source.set(diff)
	r.start()
	for range 60 { // 10 minutes
		r.tick()
	}
	st := r.store.state(t, "products")
	if st.Phase != PhaseShadow || st.Percent != 0 {
		t.Fatalf("with every pair differing: %+v", st)
	}
	s, _ := r.ctl.Status(context.Background(), "products")
	if s.Condition != CondWaiting || s.Condition.ExitCode() != 2 || !strings.Contains(s.Next, "real diff rate") {
		t.Errorf("status %q next %q, want waiting on the shadow gate", s.Condition, s.Next)
	}
	r.source.set(healthy)
	st = r.until(30, func(s State) bool { return s.Phase == PhaseCanary })
	if st.Percent != 1 {
		t.Fatalf("after the fix: %+v", st)
	}
}

// TestDataGateHoldsWithoutRollingBack: a write route does not leave its step
// while the reconcile finds mismatches; it does not roll back either.
func TestDataGateHoldsWithoutRollingBack(t *testing.T) {
	t.Parallel()
	p := noShadow("orders")
	p.Gates.Data.Enabled = true
	r := newRig(t, p)
	data := &fakeData{clock: r.clock, mismatches: 3}
	r.ctl.o.Data = data
	r.start()
	for range 30 {
		r.tick()
	}
	st := r.store.state(t, "orders")
	if st.Phase != PhaseCanary || st.Step != 0 {
		t.Fatalf("moved with a dirty reconcile: %+v", st)
	}
	var dg GateResult
	for _, g := range st.Gates {
		if g.Gate == GateData {
			dg = g
		}
	}
	if dg.Verdict != Fail || dg.Measured["mismatches"] != 3 {
		t.Fatalf("data gate %+v", dg)
	}
	data.set(0, 2*time.Minute) // clean but lagging
	r.tick()
	if st := r.store.state(t, "orders"); st.Step != 0 {
		t.Fatalf("moved with a 2m sync lag: %+v", st)
	}
	data.set(0, time.Second)
	r.until(3, func(s State) bool { return s.Step == 1 })
}

type fakeData struct {
	clock      *fakeClock
	mismatches int
	lag        time.Duration
}

func (d *fakeData) set(m int, lag time.Duration) { d.mismatches, d.lag = m, lag }

func (d *fakeData) DataStatus(context.Context, []string) (DataStatus, error) {
	return DataStatus{CheckedAt: d.clock.Now(), Mismatches: d.mismatches, SyncLag: d.lag}, nil
}

// TestManualGateWaitsForPromote.
func TestManualGateWaitsForPromote(t *testing.T) {
	t.Parallel()
	p := noShadow("products")
	p.Steps[0].Manual = true
	r := newRig(t, p)
	r.start()
	for range 30 {
		r.tick()
	}
	if st := r.store.state(t, "products"); st.Step != 0 {
		t.Fatalf("manual step advanced without promote: %+v", st)
	}
	s, _ := r.ctl.Status(context.Background(), "products")
	if s.Condition != CondWaiting || !strings.Contains(s.Next, "promote") {
		t.Fatalf("status %q %q", s.Condition, s.Next)
	}
	if _, err := r.ctl.Promote(context.Background(), "products", "bob", "looks good"); err != nil {
		t.Fatal(err)
	}
	st := r.tick()
	if st.Step != 1 || st.Promoted {
		t.Fatalf("after promote: %+v", st)
	}
	recs := r.audit.all()
	if recs[len(recs)-2].Action != "promote" || recs[len(recs)-2].Actor != "bob" {
		t.Fatalf("promote not audited: %s", actions(recs))
	}
}

// TestRestartMidStepResumesWithoutJumping: a controller stopped halfway
// through a step and a new instance (new process: nothing shared but the
// store's serialised state) make exactly the moves, at exactly the times,
// of one that never stopped.
func TestRestartMidStepResumesWithoutJumping(t *testing.T) {
	t.Parallel()
	run := func(restartAt int) []Record {
		r := newRig(t, noShadow("products"))
		r.start()
		for i := range 40 {
			if i == restartAt {
				// Serialise, drop everything in memory, restore.
				b, _ := json.Marshal(r.store.state(t, "products"))
				fresh := newMemStore()
				var st State
				if err := json.Unmarshal(b, &st); err != nil {
					t.Fatal(err)
				}
				if _, err := fresh.Save(context.Background(), st, 0); err != nil {
					t.Fatal(err)
				}
				r.store = fresh
				r.source.store = fresh
				r.ctl = r.controller(nil)
				if got := r.store.state(t, "products"); got.Step != st.Step || !got.StepStartedAt.Equal(st.StepStartedAt) || got.Tally.New.Requests != st.Tally.New.Requests {
					t.Fatalf("restored %+v, want %+v", got, st)
				}
			}
			r.tick()
		}
		return r.audit.all()
	}
	straight := run(-1)
	restarted := run(9) // mid step 1: 3 intervals into it
	if len(straight) != len(restarted) || len(straight) < 4 {
		t.Fatalf("straight %s\nrestarted %s", actions(straight), actions(restarted))
	}
	for i := range straight {
		if straight[i].Action != restarted[i].Action || !straight[i].Time.Equal(restarted[i].Time) || straight[i].ToPercent != restarted[i].ToPercent {
			t.Fatalf("move %d differs: %s at %v vs %s at %v", i, straight[i].Action, straight[i].Time, restarted[i].Action, restarted[i].Time)
		}
	}
}

// TestStaleWriteIsRetriedNotForced: an operator pauses the cohort between
// the controller's read and its write; the controller's write fails, the
// operator's pause stands, and the next interval respects it.
func TestStaleWriteIsRetriedNotForced(t *testing.T) {
	t.Parallel()
	r := newRig(t, noShadow("products"))
	reachStep(r, 1)
	r.store.beforeSave = func() {
		if _, err := r.ctl.Pause(context.Background(), "products", "carol", "investigating"); err != nil {
			t.Errorf("pause: %v", err)
		}
	}
	bad := healthy
	bad.breakerOpen = true // the controller would roll back...
	r.source.set(bad)
	st := r.tick()
	if st.Phase != PhasePaused || st.Reason != "investigating" {
		t.Fatalf("state %+v: the stale write won", st)
	}
	for range 5 {
		st = r.tick()
	}
	if st.Phase != PhasePaused {
		t.Fatalf("paused cohort moved: %+v", st)
	}
	// After resume the controller acts on fresh data.
	if _, err := r.ctl.Resume(context.Background(), "products", "carol", ""); err != nil {
		t.Fatal(err)
	}
	if st := r.tick(); st.Phase != PhaseRolledBack {
		t.Fatalf("after resume with the breaker open: %+v", st)
	}
}

// TestPauseDoesNotCountTowardTheStep: time paused is not time in step.
func TestPauseDoesNotCountTowardTheStep(t *testing.T) {
	t.Parallel()
	r := newRig(t, noShadow("products"))
	r.start()
	r.tick()
	r.tick() // 20s into step 0 (1m minimum)
	if _, err := r.ctl.Pause(context.Background(), "products", "alice", ""); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Hour)
	if _, err := r.ctl.Resume(context.Background(), "products", "alice", ""); err != nil {
		t.Fatal(err)
	}
	s, _ := r.ctl.Status(context.Background(), "products")
	if s.TimeInStep != 20*time.Second {
		t.Fatalf("time in step after an hour's pause: %v, want 20s", s.TimeInStep)
	}
	st := r.tick()
	if st.Step != 0 {
		t.Fatalf("jumped after resume: %+v", st)
	}
}

// TestCohortMovesAsOne: two routes, one state, one percent, the source asked
// for both routes together.
func TestCohortMovesAsOne(t *testing.T) {
	t.Parallel()
	r := newRig(t, noShadow("cart", "order"))
	st := reachStep(r, 1)
	if st.Percent != 25 || len(st.Routes) != 2 {
		t.Fatalf("state %+v", st)
	}
	for _, rt := range []string{"cart", "order"} {
		if v := testutil.ToFloat64(r.ctl.o.Metrics.percent.WithLabelValues(rt)); v != 25 {
			t.Errorf("%s percent %v, want 25", rt, v)
		}
	}
	for _, c := range r.source.calls {
		if strings.Join(c, ",") != "cart,order" {
			t.Fatalf("source asked for %v, want both routes", c)
		}
	}
	// Commands by either route name act on the cohort.
	if _, err := r.ctl.Abort(context.Background(), "order", "dave", "drill over"); err != nil {
		t.Fatal(err)
	}
	if st := r.store.state(t, "cart"); st.Phase != PhaseRolledBack || !st.PinnedLegacy {
		t.Fatalf("abort through one route left the cohort %+v", st)
	}
}

type notLeader struct{}

func (notLeader) IsLeader() bool { return false }

func TestFollowerDoesNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, noShadow("products"))
	r.ctl.o.Leader = notLeader{}
	r.start()
	saves := r.store.saves
	for range 20 {
		r.tick()
	}
	if r.store.saves != saves {
		t.Fatalf("a follower wrote %d times", r.store.saves-saves)
	}
	// It still exports the shared state: the leader (another controller on
	// the same store) moves the cohort, the follower's gauges follow.
	leader := r.controller(nil)
	r.clock.Add(time.Hour)
	leader.Reconcile(context.Background())
	r.ctl.Reconcile(context.Background())
	st := r.store.state(t, "products")
	if st.Step != 1 {
		t.Fatalf("leader did not move: %+v", st)
	}
	if v := testutil.ToFloat64(r.ctl.o.Metrics.percent.WithLabelValues("products")); v != 25 {
		t.Errorf("follower exports %s = %v, want the leader's 25", MetricStepPercent, v)
	}
}

func TestCommandErrorsAreStructured(t *testing.T) {
	t.Parallel()
	r := newRig(t, noShadow("products"))
	ctx := context.Background()
	check := func(err error, code string) {
		t.Helper()
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Code != code || ce.Message == "" {
			t.Errorf("err = %v, want code %s", err, code)
		}
	}
	_, err := r.ctl.Start(ctx, "nope", "a", "")
	check(err, CodeNoPlan)
	_, err = r.ctl.Promote(ctx, "products", "a", "")
	check(err, CodeNotCanary)
	_, err = r.ctl.Resume(ctx, "products", "a", "")
	check(err, CodeNotPaused)
	_, err = r.ctl.Abort(ctx, "products", "a", "")
	check(err, CodeNotRunning)
	r.start()
	_, err = r.ctl.Start(ctx, "products", "a", "")
	check(err, CodeRunning)
	if len(r.audit.all()) != 1 {
		t.Errorf("refused commands were audited: %s", actions(r.audit.all()))
	}
}
