// Package localsource is the autopilot's metric source for a single gateway:
// it reads the counters the gateway already keeps, straight from its
// Prometheus registry (no scrape, no Prometheus server), and turns their
// running totals into the increase over a window by keeping a few snapshots.
// It also adapts the retirement tracker to the retirement gate.
package localsource

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/rollout"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// keep is how many snapshots are kept per cohort: the controller asks for
// the window since its last evaluation, so a few suffice.
const keep = 16

// Source reads one gateway's registry.
type Source struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu    sync.Mutex
	snaps map[string][]snapshot // by cohort key, oldest first
}

var _ rollout.Source = (*Source)(nil)

type snapshot struct {
	at          time.Time
	tot         totals
	breakerOpen bool
}

// totals are running counters since the process started.
type totals struct {
	legacy, new               side
	fallbacks                 float64
	shadowCompared, shadowDif float64
}

type side struct {
	requests, errors float64
	bounds           []float64 // finite
	cum              []float64 // cumulative per bound, then the total count
}

// New returns a Source over g (the gateway's registry). now nil: time.Now.
func New(g prometheus.Gatherer, now func() time.Time) *Source {
	if now == nil {
		now = time.Now
	}
	return &Source{g: g, now: now, snaps: map[string][]snapshot{}}
}

// Sample returns the increase of the cohort's counters over the window
// ending now. The first call for a cohort has nothing to subtract from and
// returns an empty sample (the window starts then): the rollout waits one
// interval longer rather than counting traffic from before the step.
func (s *Source) Sample(_ context.Context, routes []string, newUpstream string, window time.Duration) (rollout.Sample, error) {
	mfs, err := s.g.Gather()
	if err != nil {
		return rollout.Sample{}, fmt.Errorf("localsource: gathering metrics: %w", err)
	}
	cur := snapshot{at: s.now()}
	cur.tot, cur.breakerOpen = read(mfs, routes, newUpstream)
	key := newUpstream + "|" + strings.Join(routes, ",")

	s.mu.Lock()
	defer s.mu.Unlock()
	hist := s.snaps[key]
	var out rollout.Sample
	if len(hist) > 0 {
		// The base is the newest snapshot at or before the window's start;
		// failing that, the oldest one (a shorter window than asked).
		from := cur.at.Add(-window)
		base := hist[0]
		for _, h := range hist {
			if !h.at.After(from) {
				base = h
			}
		}
		out = diff(cur.tot, base.tot)
		out.BreakerOpen = cur.breakerOpen
		for _, h := range hist {
			if h.at.After(base.at) && h.breakerOpen {
				out.BreakerOpen = true
			}
		}
	}
	hist = append(hist, cur)
	if len(hist) > keep {
		hist = slices.Delete(hist, 0, len(hist)-keep)
	}
	s.snaps[key] = hist
	return out, nil
}

// inc is a counter's increase; a counter lower than its base was reset
// (never in one process, but cheap to honour) and counts from zero.
func inc(cur, base float64) uint64 {
	d := cur - base
	if d < 0 {
		d = cur
	}
	return uint64(math.Round(d))
}

func diff(cur, base totals) rollout.Sample {
	sd := func(c, b side) rollout.SideTally {
		t := rollout.SideTally{Requests: inc(c.requests, b.requests), Errors: inc(c.errors, b.errors)}
		if len(c.bounds) == 0 {
			return t
		}
		t.Bounds = slices.Clone(c.bounds)
		t.Buckets = make([]uint64, len(c.cum))
		prevC, prevB := 0.0, 0.0
		for i := range c.cum {
			bc := 0.0
			if len(b.cum) == len(c.cum) {
				bc = b.cum[i]
			}
			// per-bucket increase = increase of this cumulative bucket
			// minus that of the one below
			t.Buckets[i] = inc(c.cum[i]-prevC, bc-prevB)
			prevC, prevB = c.cum[i], bc
		}
		return t
	}
	return rollout.Sample{
		Legacy: sd(cur.legacy, base.legacy), New: sd(cur.new, base.new),
		Fallbacks:       inc(cur.fallbacks, base.fallbacks),
		ShadowCompared:  inc(cur.shadowCompared, base.shadowCompared),
		ShadowRealDiffs: inc(cur.shadowDif, base.shadowDif),
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// read sums the cohort's series out of one gather.
func read(mfs []*dto.MetricFamily, routes []string, newUpstream string) (t totals, breakerOpen bool) {
	in := func(m *dto.Metric) bool { return slices.Contains(routes, label(m, "route")) }
	sideOf := func(m *dto.Metric) *side {
		switch label(m, "backend") {
		case "new":
			return &t.new
		case "legacy":
			return &t.legacy
		}
		return nil
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case gateway.MetricRequests:
			for _, m := range mf.GetMetric() {
				if sd := sideOf(m); sd != nil && in(m) {
					v := m.GetCounter().GetValue()
					sd.requests += v
					if strings.HasPrefix(label(m, "code"), "5") {
						sd.errors += v
					}
				}
			}
		case gateway.MetricRequestDuration:
			for _, m := range mf.GetMetric() {
				sd := sideOf(m)
				if sd == nil || !in(m) {
					continue
				}
				h := m.GetHistogram()
				var bounds []float64
				for _, b := range h.GetBucket() {
					if !math.IsInf(b.GetUpperBound(), 1) {
						bounds = append(bounds, b.GetUpperBound())
					}
				}
				if sd.cum == nil {
					sd.bounds = bounds
					sd.cum = make([]float64, len(bounds)+1)
				}
				if !slices.Equal(sd.bounds, bounds) {
					continue // routes of one cohort share the gateway's buckets
				}
				for i, b := range h.GetBucket() {
					if i < len(bounds) {
						sd.cum[i] += float64(b.GetCumulativeCount())
					}
				}
				sd.cum[len(bounds)] += float64(h.GetSampleCount())
			}
		case gateway.MetricFallbacks:
			for _, m := range mf.GetMetric() {
				if in(m) {
					t.fallbacks += m.GetCounter().GetValue()
				}
			}
		case gateway.MetricBreakerState:
			for _, m := range mf.GetMetric() {
				if label(m, gateway.LabelUpstream) == newUpstream && m.GetGauge().GetValue() >= 2 {
					breakerOpen = true
				}
			}
		case shadow.MetricRequests:
			for _, m := range mf.GetMetric() {
				if !in(m) {
					continue
				}
				switch label(m, "result") {
				case "diff":
					t.shadowDif += m.GetCounter().GetValue()
					t.shadowCompared += m.GetCounter().GetValue()
				case "match":
					t.shadowCompared += m.GetCounter().GetValue()
				}
			}
		}
	}
	return t, breakerOpen
}

// Reporter is what the retirement tracker offers (*retire.Tracker).
type Reporter interface {
	Report(window time.Duration) retire.Report
}

// Retirement adapts the retirement tracker to the retirement gate.
type Retirement struct{ Tracker Reporter }

var _ rollout.LegacyUsage = Retirement{}

// LegacyLastHit is the latest legacy hit of any of routes. Without one it
// is when tracking began: silence before the tracker existed is not
// evidence.
func (r Retirement) LegacyLastHit(_ context.Context, routes []string) (time.Time, error) {
	rep := r.Tracker.Report(0)
	last := rep.TrackingSince
	for _, rr := range rep.Routes {
		if slices.Contains(routes, rr.Route) && rr.LastLegacyHit != nil && rr.LastLegacyHit.After(last) {
			last = *rr.LastLegacyHit
		}
	}
	return last, nil
}
