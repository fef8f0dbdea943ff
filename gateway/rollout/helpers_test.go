package rollout

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeClock is moved by the test only.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memStore keeps each cohort's state as JSON, as a database would: every
// Load returns a fresh decoding, so nothing survives that is not serialised.
type memStore struct {
	mu    sync.Mutex
	data  map[string][]byte
	ver   map[string]int64
	saves int
	// beforeSave runs between the version check's read and the write, to
	// model a concurrent writer.
	beforeSave func()
}

func newMemStore() *memStore { return &memStore{data: map[string][]byte{}, ver: map[string]int64{}} }

func (s *memStore) Load(_ context.Context, cohort string) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.data[cohort]
	if !ok {
		return State{}, ErrNotFound
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, err
	}
	st.Version = s.ver[cohort]
	return st, nil
}

func (s *memStore) Save(_ context.Context, st State, expect int64) (int64, error) {
	if f := s.beforeSave; f != nil {
		s.beforeSave = nil
		f()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ver[st.Cohort] != expect {
		return 0, ErrConflict
	}
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	s.data[st.Cohort] = b
	s.ver[st.Cohort]++
	s.saves++
	return s.ver[st.Cohort], nil
}

func (s *memStore) state(t *testing.T, cohort string) State {
	t.Helper()
	st, err := s.Load(context.Background(), cohort)
	if err != nil {
		t.Fatalf("loading %s: %v", cohort, err)
	}
	return st
}

type memAudit struct {
	mu   sync.Mutex
	recs []Record
}

func (a *memAudit) Record(_ context.Context, r Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}

func (a *memAudit) all() []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Record(nil), a.recs...)
}

// traffic describes a route's behaviour; the fake source turns it into
// the window's counts, split by the percent currently stored.
type traffic struct {
	rps           float64 // requests per second over both sides
	newErrRate    float64
	legacyErrRate float64
	newLatency    float64 // seconds, every request
	legacyLatency float64
	breakerOpen   bool
	fallbacksPerS float64
	shadowPerS    float64 // compared pairs per second
	shadowReal    float64 // share of them with a real difference
}

var testBounds = []float64{.005, .01, .025, .05, .1, .25, .5, 1}

// histogram puts n observations of v seconds into testBounds' buckets.
func histogram(n uint64, v float64) ([]float64, []uint64) {
	b := make([]uint64, len(testBounds)+1)
	i := len(testBounds) // +Inf
	for j, ub := range testBounds {
		if v <= ub {
			i = j
			break
		}
	}
	b[i] = n
	return testBounds, b
}

type fakeSource struct {
	mu     sync.Mutex
	store  *memStore
	cohort string
	tr     traffic
	calls  [][]string // routes asked for, per call
}

func (f *fakeSource) set(tr traffic) {
	f.mu.Lock()
	f.tr = tr
	f.mu.Unlock()
}

func (f *fakeSource) Sample(ctx context.Context, routes []string, _ string, window time.Duration) (Sample, error) {
	f.mu.Lock()
	tr := f.tr
	f.calls = append(f.calls, routes)
	f.mu.Unlock()
	pct := 0.0
	if st, err := f.store.Load(ctx, f.cohort); err == nil && !st.PinnedLegacy {
		pct = st.Percent
	}
	total := tr.rps * window.Seconds()
	nNew := uint64(math.Round(total * pct / 100))
	nLeg := uint64(math.Round(total)) - nNew
	var s Sample
	s.New = SideTally{Requests: nNew, Errors: uint64(math.Round(float64(nNew) * tr.newErrRate))}
	s.New.Bounds, s.New.Buckets = histogram(nNew, tr.newLatency)
	s.Legacy = SideTally{Requests: nLeg, Errors: uint64(math.Round(float64(nLeg) * tr.legacyErrRate))}
	s.Legacy.Bounds, s.Legacy.Buckets = histogram(nLeg, tr.legacyLatency)
	s.BreakerOpen = tr.breakerOpen
	s.Fallbacks = uint64(math.Round(tr.fallbacksPerS * window.Seconds()))
	s.ShadowCompared = uint64(math.Round(tr.shadowPerS * window.Seconds()))
	s.ShadowRealDiffs = uint64(math.Round(float64(s.ShadowCompared) * tr.shadowReal))
	return s, nil
}

var healthy = traffic{rps: 20, newErrRate: 0.001, legacyErrRate: 0.001, newLatency: 0.02, legacyLatency: 0.02, shadowPerS: 5}

// fastPlan: shadow 1m, steps 1, 25, 100 of 1m and 50 requests each, checked
// every 10s.
func fastPlan(routes ...string) Plan {
	ro := config.Rollout{
		Steps: []config.RolloutStep{
			{Percent: 1, MinDuration: time.Minute, MinRequests: 5},
			{Percent: 25, MinDuration: time.Minute, MinRequests: 50},
			{Percent: 100, MinDuration: time.Minute, MinRequests: 50},
		},
		Interval: 10 * time.Second,
		Gates: config.RolloutGates{
			Shadow:     config.ShadowGate{MinCompared: 100, MinDuration: time.Minute},
			Errors:     config.ErrorGate{MinRequests: 5},
			Latency:    config.LatencyGate{MinRequests: 5},
			Resilience: config.ResilienceGate{MinRequests: 5},
			Retire:     config.RetireGate{Window: time.Hour},
		},
	}
	c := &config.Config{Routes: []config.Route{{Name: "x", Rollout: &ro}}}
	c.Routes[0].Rollout.Gates.Shadow.MaxRealDiffRate = 0.001
	c.ApplyDefaults()
	return Plan{Cohort: routes[0], Routes: routes, NewUpstream: "catalog", Rollout: *c.Routes[0].Rollout}
}

type rig struct {
	t      *testing.T
	clock  *fakeClock
	store  *memStore
	audit  *memAudit
	source *fakeSource
	reg    *prometheus.Registry
	ctl    *Controller
	plan   Plan
}

func newRig(t *testing.T, plan Plan) *rig {
	t.Helper()
	r := &rig{t: t, clock: &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}, store: newMemStore(), audit: &memAudit{}, reg: prometheus.NewRegistry(), plan: plan}
	r.source = &fakeSource{store: r.store, cohort: plan.Cohort, tr: healthy}
	m, err := NewMetrics(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	r.ctl = r.controller(m)
	return r
}

func (r *rig) controller(m *Metrics) *Controller {
	r.t.Helper()
	ctl, err := New(Options{Plans: []Plan{r.plan}, Store: r.store, Audit: r.audit, Source: r.source, Clock: r.clock, Metrics: m,
		Log: slog.New(slog.NewTextHandler(testWriter{r.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		r.t.Fatal(err)
	}
	return ctl
}

// tick advances the clock one interval and reconciles.
func (r *rig) tick() State {
	r.clock.Add(r.plan.Interval)
	r.ctl.Reconcile(context.Background())
	return r.store.state(r.t, r.plan.Cohort)
}

// until ticks until cond holds, at most n intervals.
func (r *rig) until(n int, cond func(State) bool) State {
	r.t.Helper()
	st := r.store.state(r.t, r.plan.Cohort)
	for range n {
		if cond(st) {
			return st
		}
		st = r.tick()
	}
	if !cond(st) {
		r.t.Fatalf("condition not met after %d intervals; state %+v", n, st)
	}
	return st
}

func (r *rig) start() State {
	r.t.Helper()
	st, err := r.ctl.Start(context.Background(), r.plan.Routes[0], "alice", "drill")
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
