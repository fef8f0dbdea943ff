package localsource

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/prometheus/client_golang/prometheus"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type gw struct {
	reg      *prometheus.Registry
	reqs     *prometheus.CounterVec
	dur      *prometheus.HistogramVec
	fallback *prometheus.CounterVec
	breaker  float64
	shadow   *prometheus.CounterVec
}

// newGW registers the gateway's metric names as the gateway does.
func newGW(t *testing.T) *gw {
	g := &gw{reg: prometheus.NewRegistry()}
	g.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: gateway.MetricRequests, Help: "h"}, []string{"route", "backend", "method", "code"})
	g.dur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: gateway.MetricRequestDuration, Help: "h", Buckets: []float64{.01, .05, .1}}, []string{"route", "backend"})
	g.fallback = prometheus.NewCounterVec(prometheus.CounterOpts{Name: gateway.MetricFallbacks, Help: "h"}, []string{"route", "from", "to"})
	g.shadow = prometheus.NewCounterVec(prometheus.CounterOpts{Name: shadow.MetricRequests, Help: "h"}, []string{"route", "result"})
	br := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: gateway.MetricBreakerState, Help: "h", ConstLabels: prometheus.Labels{gateway.LabelUpstream: "catalog"}}, func() float64 { return g.breaker })
	g.reg.MustRegister(g.reqs, g.dur, g.fallback, g.shadow, br)
	return g
}

func TestSampleIsTheIncreaseOverTheWindow(t *testing.T) {
	t.Parallel()
	g := newGW(t)
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	src := New(g.reg, c.now)
	ctx := context.Background()
	cohort := []string{"products", "search"}

	g.reqs.WithLabelValues("products", "new", "GET", "200").Add(500) // before the step: must not count
	s, err := src.Sample(ctx, cohort, "catalog", 10*time.Second)
	if err != nil || s.New.Requests != 0 {
		t.Fatalf("first sample %+v %v, want empty (nothing to subtract from)", s, err)
	}

	c.add(10 * time.Second)
	g.reqs.WithLabelValues("products", "new", "GET", "200").Add(90)
	g.reqs.WithLabelValues("search", "new", "GET", "503").Add(10)
	g.reqs.WithLabelValues("products", "legacy", "GET", "200").Add(300)
	g.reqs.WithLabelValues("orders", "new", "GET", "503").Add(1000) // another cohort
	for range 80 {
		g.dur.WithLabelValues("products", "new").Observe(0.07)
	}
	for range 20 {
		g.dur.WithLabelValues("search", "new").Observe(0.2) // +Inf bucket
	}
	g.fallback.WithLabelValues("products", "new", "legacy").Add(2)
	g.shadow.WithLabelValues("products", "match").Add(48)
	g.shadow.WithLabelValues("products", "diff").Add(2)
	g.shadow.WithLabelValues("products", "error").Add(7) // not compared
	s, err = src.Sample(ctx, cohort, "catalog", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.New.Requests != 100 || s.New.Errors != 10 || s.Legacy.Requests != 300 || s.Legacy.Errors != 0 {
		t.Errorf("sides %+v / %+v", s.New, s.Legacy)
	}
	if s.Fallbacks != 2 || s.ShadowCompared != 50 || s.ShadowRealDiffs != 2 || s.BreakerOpen {
		t.Errorf("sample %+v", s)
	}
	if len(s.New.Bounds) != 3 || len(s.New.Buckets) != 4 || s.New.Buckets[2] != 80 || s.New.Buckets[3] != 20 || s.New.Buckets[0] != 0 {
		t.Errorf("new histogram %v %v, want 80 in (0.05,0.1] and 20 in +Inf", s.New.Bounds, s.New.Buckets)
	}

	// The next window sees only what happened in it, and a breaker that
	// opened meanwhile.
	c.add(10 * time.Second)
	g.reqs.WithLabelValues("products", "new", "GET", "200").Add(5)
	g.breaker = 2
	s, _ = src.Sample(ctx, cohort, "catalog", 10*time.Second)
	if s.New.Requests != 5 || s.New.Errors != 0 || s.New.Buckets[2] != 0 || !s.BreakerOpen {
		t.Errorf("second window %+v breaker %v", s.New, s.BreakerOpen)
	}
	// A wider window reaches back to an older snapshot.
	c.add(10 * time.Second)
	g.breaker = 0
	s, _ = src.Sample(ctx, cohort, "catalog", 20*time.Second)
	if s.New.Requests != 5 || !s.BreakerOpen {
		t.Errorf("20s window: %d new requests, breaker %v; want 5 and the open breaker seen in it", s.New.Requests, s.BreakerOpen)
	}
}

type fakeTracker struct{ rep retire.Report }

func (f fakeTracker) Report(time.Duration) retire.Report { return f.rep }

func TestRetirementLastHit(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	hit := since.Add(5 * time.Hour)
	other := since.Add(9 * time.Hour)
	r := Retirement{fakeTracker{retire.Report{TrackingSince: since, Routes: []retire.RouteReport{
		{Route: "products", LastLegacyHit: &hit}, {Route: "orders", LastLegacyHit: &other}, {Route: "search"},
	}}}}
	got, _ := r.LegacyLastHit(context.Background(), []string{"products", "search"})
	if !got.Equal(hit) {
		t.Errorf("last hit %v, want %v (orders is not in the cohort)", got, hit)
	}
	got, _ = r.LegacyLastHit(context.Background(), []string{"search"})
	if !got.Equal(since) {
		t.Errorf("never hit: %v, want tracking start %v", got, since)
	}
}
