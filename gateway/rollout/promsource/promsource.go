// Package promsource is the autopilot's metric source for a fleet: it asks
// Prometheus, which scrapes every gateway replica, for the increase of the
// gateway's own counters over a window, summed over replicas (as Flagger's
// metric templates do). Instant queries over the HTTP API, net/http only.
package promsource

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/rollout"
	"github.com/ficus-gw/ficus/gateway/shadow"
)

// Source queries one Prometheus.
type Source struct {
	base   string
	client *http.Client
	now    func() time.Time
}

var _ rollout.Source = (*Source)(nil)

// New returns a Source for the Prometheus at base (e.g.
// http://127.0.0.1:9090). client nil: a client with a 10s timeout.
func New(base string, client *http.Client) (*Source, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("promsource: %q is not an http(s) base URL", base)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Source{base: strings.TrimSuffix(base, "/"), client: client, now: time.Now}, nil
}

// Sample sums routes over every replica for the window ending now.
func (s *Source) Sample(ctx context.Context, routes []string, newUpstream string, window time.Duration) (rollout.Sample, error) {
	var out rollout.Sample
	if len(routes) == 0 {
		return out, nil
	}
	now := s.now()
	// PromQL ranges are whole seconds; round up so no interval is lost.
	w := fmt.Sprintf("%ds", max(1, int64(math.Ceil(window.Seconds()))))
	sel := `route=~"` + routeRegex(routes) + `"`
	scalar := func(q string) (uint64, error) {
		v, err := s.query(ctx, q, now)
		if err != nil {
			return 0, err
		}
		var sum float64
		for _, x := range v {
			sum += x.value
		}
		return uint64(math.Round(max(0, sum))), nil
	}
	side := func(backend string) (rollout.SideTally, error) {
		var t rollout.SideTally
		var err error
		if t.Requests, err = scalar(fmt.Sprintf(`sum(increase(%s{%s,backend=%q}[%s]))`, gateway.MetricRequests, sel, backend, w)); err != nil {
			return t, err
		}
		if t.Errors, err = scalar(fmt.Sprintf(`sum(increase(%s{%s,backend=%q,code=~"5.."}[%s]))`, gateway.MetricRequests, sel, backend, w)); err != nil {
			return t, err
		}
		buckets, err := s.query(ctx, fmt.Sprintf(`sum by (le) (increase(%s_bucket{%s,backend=%q}[%s]))`, gateway.MetricRequestDuration, sel, backend, w), now)
		if err != nil {
			return t, err
		}
		t.Bounds, t.Buckets = perBucket(buckets)
		return t, nil
	}
	var err error
	if out.New, err = side("new"); err != nil {
		return out, err
	}
	if out.Legacy, err = side("legacy"); err != nil {
		return out, err
	}
	if out.Fallbacks, err = scalar(fmt.Sprintf(`sum(increase(%s{%s}[%s]))`, gateway.MetricFallbacks, sel, w)); err != nil {
		return out, err
	}
	if newUpstream != "" {
		open, err := scalar(fmt.Sprintf(`max(max_over_time(%s{%s=%q}[%s]))`, gateway.MetricBreakerState, gateway.LabelUpstream, newUpstream, w))
		if err != nil {
			return out, err
		}
		out.BreakerOpen = open >= 2 // 2 is open, 1 half-open
	}
	// A shadow "diff" is counted after ignore rules and per-request noise
	// cancellation; match + diff are the compared pairs.
	if out.ShadowCompared, err = scalar(fmt.Sprintf(`sum(increase(%s{%s,result=~"match|diff"}[%s]))`, shadow.MetricRequests, sel, w)); err != nil {
		return out, err
	}
	if out.ShadowRealDiffs, err = scalar(fmt.Sprintf(`sum(increase(%s{%s,result="diff"}[%s]))`, shadow.MetricRequests, sel, w)); err != nil {
		return out, err
	}
	return out, nil
}

// routeRegex matches exactly the given route names.
func routeRegex(routes []string) string {
	q := make([]string, len(routes))
	for i, r := range routes {
		q[i] = regexp.QuoteMeta(r)
	}
	return strings.Join(q, "|")
}

type point struct {
	labels map[string]string
	value  float64
}

// query runs an instant query and returns its vector.
func (s *Source) query(ctx context.Context, q string, at time.Time) ([]point, error) {
	form := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("promsource: querying Prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("promsource: reading Prometheus's answer: %w", err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("promsource: HTTP %d, not a Prometheus answer: %w", resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("promsource: query %q: %s", q, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("promsource: query %q returned a %s, want a vector", q, r.Data.ResultType)
	}
	out := make([]point, 0, len(r.Data.Result))
	for _, x := range r.Data.Result {
		str, _ := x.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("promsource: query %q: value %v: %w", q, x.Value[1], err)
		}
		if math.IsNaN(v) {
			v = 0
		}
		out = append(out, point{labels: x.Metric, value: v})
	}
	return out, nil
}

// perBucket turns cumulative buckets by le into finite bounds and counts
// per bucket (the last count is the +Inf bucket's).
func perBucket(ps []point) ([]float64, []uint64) {
	type b struct{ le, cum float64 }
	var bs []b
	for _, p := range ps {
		le, err := strconv.ParseFloat(p.labels["le"], 64)
		if err != nil {
			continue
		}
		bs = append(bs, b{le, p.value})
	}
	if len(bs) == 0 {
		return nil, nil
	}
	slices.SortFunc(bs, func(x, y b) int {
		switch {
		case x.le < y.le:
			return -1
		case x.le > y.le:
			return 1
		}
		return 0
	})
	var bounds []float64
	var counts []uint64
	prev := 0.0
	for _, x := range bs {
		c := max(0, x.cum-prev) // extrapolated increases can cross by a hair
		prev = max(prev, x.cum)
		if math.IsInf(x.le, 1) {
			counts = append(counts, uint64(math.Round(c)))
			return bounds, counts
		}
		bounds = append(bounds, x.le)
		counts = append(counts, uint64(math.Round(c)))
	}
	return bounds, append(counts, 0)
}
