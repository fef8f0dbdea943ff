package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/dashboards"
)

// fakePrometheus answers the API calls promcheck makes: every query over a
// present metric returns one series, queries over absent metrics none, and
// a query containing "BROKEN(" is rejected like a syntax error.
type fakePrometheus struct {
	mu      sync.Mutex
	up      bool
	present []string
	queries []string
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	switch {
	case r.URL.Path == "/api/v1/label/__name__/values":
		_ = enc.Encode(map[string]any{"status": "success", "data": f.present})
	case r.URL.Path == "/api/v1/label/route/values":
		_ = enc.Encode(map[string]any{"status": "success", "data": []string{"legacy-catalog", "products"}})
	case r.URL.Path == "/api/v1/query":
		q := r.URL.Query().Get("query")
		f.queries = append(f.queries, q)
		if strings.Contains(q, "BROKEN(") {
			w.WriteHeader(http.StatusBadRequest)
			_ = enc.Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": "parse error: unexpected end of input"})
			return
		}
		n := 0
		switch {
		case strings.HasPrefix(q, "up{"):
			if f.up {
				n = 1
			}
		case strings.Contains(q, `route="products"`), !strings.Contains(q, "route="):
			for _, m := range dashboards.MetricNames(q) {
				for _, p := range f.present {
					if p == m {
						n = 1
					}
				}
			}
		}
		result := make([]map[string]any, n)
		for i := range result {
			result[i] = map[string]any{"metric": map[string]string{}, "value": []any{1, "1"}}
		}
		_ = enc.Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	default:
		http.NotFound(w, r)
	}
}

func testOptions() options {
	// The pending list is the test's own: the product's is empty once every
	// metric is exported, but the classification must keep working.
	return options{job: "ficus-gateway", poll: 5 * time.Millisecond,
		rateInterval: "30s", rangeDur: "5m", pending: []string{"ficus_shadow_requests_total"}}
}

func TestCheckClassifiesEveryExpression(t *testing.T) {
	t.Parallel()
	exprs := []dashboards.Expr{
		{Name: "ok", Kind: dashboards.KindPanel, PromQL: `sum(rate(ficus_requests_total[$__rate_interval]))`},
		{Name: "route", Kind: dashboards.KindPanel, PromQL: `sum(rate(ficus_requests_total{route="$route"}[$__rate_interval]))`},
		{Name: "pending", Kind: dashboards.KindPanel, PromQL: `sum(rate(ficus_shadow_requests_total[$__rate_interval]))`},
		{Name: "pending via rule", Kind: dashboards.KindAlert, PromQL: `route:ficus_shadow_diff:ratio_rate5m > 0.01`},
		{Name: "rule", Kind: dashboards.KindRecording, PromQL: `sum(rate(ficus_shadow_requests_total[5m]))`},
		{Name: "route:ficus_shadow_diff:ratio_rate5m", Kind: dashboards.KindRecording, PromQL: `sum(rate(ficus_shadow_requests_total[5m]))`},
		{Name: "typo", Kind: dashboards.KindPanel, PromQL: `sum(rate(ficus_request_totals[5m]))`},
		{Name: "syntax", Kind: dashboards.KindPanel, PromQL: `BROKEN(`},
		{Name: "unknown variable", Kind: dashboards.KindPanel, PromQL: `ficus_requests_total{backend="$backend"}`},
	}
	for _, tc := range []struct {
		name    string
		present []string
		want    map[string]status
	}{
		{"pending not exported", []string{"up", "ficus_requests_total"}, map[string]status{"ok": statusPass, "route": statusPass, "pending": statusPending,
			"pending via rule": statusPending, "rule": statusPending, "route:ficus_shadow_diff:ratio_rate5m": statusPending,
			"typo": statusFail, "syntax": statusFail, "unknown variable": statusFail}},
		// A pending metric that is exported after all fails every
		// expression over it until it leaves the list.
		{"pending exported now", []string{"up", "ficus_requests_total", "ficus_shadow_requests_total"}, map[string]status{"ok": statusPass, "route": statusPass, "pending": statusFail,
			"pending via rule": statusFail, "rule": statusFail, "route:ficus_shadow_diff:ratio_rate5m": statusFail,
			"typo": statusFail, "syntax": statusFail, "unknown variable": statusFail}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakePrometheus{up: true, present: tc.present}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c := &client{base: srv.URL, http: srv.Client()}
			res, err := check(ctx, c, testOptions(), exprs)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.status != tc.want[r.expr.Name] {
					t.Errorf("%s: %s (%s), want %s", r.expr.Name, r.status, r.detail, tc.want[r.expr.Name])
				}
			}
			var sawRoute bool
			fake.mu.Lock()
			for _, q := range fake.queries {
				sawRoute = sawRoute || strings.Contains(q, `ficus_requests_total{route="products"}[30s]`)
			}
			fake.mu.Unlock()
			if !sawRoute {
				t.Error("$route and $__rate_interval were never substituted with a known route and the interval")
			}
		})
	}
}

func TestCheckFailsWhenTheTargetIsNeverUp(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakePrometheus{up: false})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := check(ctx, &client{base: srv.URL, http: srv.Client()}, testOptions(), nil)
	if err == nil || !strings.Contains(err.Error(), "never scraped") {
		t.Fatalf("err = %v, want a 'never scraped' error", err)
	}
}

func TestRunPrintsAClosingCountLine(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakePrometheus{up: true, present: []string{"up"}})
	defer srv.Close()
	var out, errb strings.Builder
	code := run(context.Background(), []string{"--prometheus", srv.URL, "--timeout", "300ms", "--poll", "5ms"}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d with no gateway metrics present, want 1; stderr: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "\npromcheck: 0 passed, ") {
		t.Errorf("no closing count line in:\n%s", out.String())
	}
	if code := run(context.Background(), nil, &out, &errb); code != 2 {
		t.Errorf("exit %d without --prometheus, want 2", code)
	}
}
