package gateway

import (
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/gofiber/fiber/v2"
)

func boolPtr(b bool) *bool { return &b }

// blocking is an upstream that never answers until the test ends or the
// gateway gives up on it.
func blocking(t *testing.T) *upstream {
	t.Helper()
	done := make(chan struct{})
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(done) }) // runs before u.Close (LIFO)
	return u
}

func resetting(t *testing.T) *upstream {
	t.Helper()
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // RST instead of FIN
		conn.Close()
	})
}

func ok(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }
}

func TestUpstreamFailuresBecomeStructuredErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		up     func(t *testing.T) string
		status int
		code   string
		reason string
	}{
		{"timeout", func(t *testing.T) string { return blocking(t).URL }, 504, CodeUpstreamTimeout, "timeout"},
		{"refused", deadURL, 502, CodeUpstreamUnreach, "connect"},
		{"reset", func(t *testing.T) string { return resetting(t).URL }, 502, CodeUpstreamReset, "reset"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			routes := []config.Route{{Name: "slow", Path: "/x/*", Timeout: 200 * time.Millisecond}}
			r := start(t, testConfig(t, map[string]string{"legacy": tc.up(t)}, routes, nil), nil)
			resp, body := r.get(t, "/x/1")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			e := decodeErr(t, body)
			if e.Code != tc.code || e.RequestID != resp.Header.Get("X-Request-Id") {
				t.Fatalf("body %+v, header id %q", e, resp.Header.Get("X-Request-Id"))
			}
			if strings.Contains(e.Message, "dial") || strings.Contains(e.Message, "fasthttp") {
				t.Fatalf("library text leaked: %q", e.Message)
			}
			if resp.Header.Get(HeaderRoute) != "slow" || resp.Header.Get(HeaderBackend) != "legacy" {
				t.Fatalf("ficus headers missing: %v", resp.Header)
			}
			if got := r.counter(t, MetricUpstreamErrors, "route", "slow", "backend", "legacy", "reason", tc.reason); got != 1 {
				t.Fatalf("%s{reason=%s} = %v", MetricUpstreamErrors, tc.reason, got)
			}
			if got := r.counter(t, MetricRequests, "route", "slow", "code", statusText[tc.status]); got != 1 {
				t.Fatalf("%s{code=%d} = %v", MetricRequests, tc.status, got)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, ok("x"))
	routes := []config.Route{{Name: "ro", Path: "/ro/*", Methods: []string{"GET", "HEAD"}}}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, routes, nil), nil)
	req, _ := http.NewRequest(http.MethodDelete, r.url+"/ro/1", nil)
	resp, body := r.do(t, req)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("status %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if e := decodeErr(t, body); e.Code != CodeMethodNotAllowed {
		t.Fatalf("code %s", e.Code)
	}
	if up.hits.Load() != 0 {
		t.Fatal("refused method reached the upstream")
	}
}

func TestFallbackToLegacy(t *testing.T) {
	t.Parallel()
	type tc struct {
		name       string
		newUp      func(t *testing.T) string
		method     string
		fallback   *bool
		wantStatus int
		wantHeader string // X-Ficus-Fallback, "" for none
		legacyHits int64
	}
	cases := []tc{
		{"GET, new refuses connections", deadURL, "GET", nil, 200, "connect", 1},
		{"GET, new answers 500", func(t *testing.T) string {
			return newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }).URL
		}, "GET", nil, 200, "status_5xx", 1},
		{"GET, new times out", func(t *testing.T) string { return blocking(t).URL }, "GET", nil, 200, "timeout", 1},
		{"POST, new refuses connections: never sent, so replayed", deadURL, "POST", nil, 200, "connect", 1},
		{"POST, new times out: may have been applied, never replayed", func(t *testing.T) string { return blocking(t).URL }, "POST", nil, 504, "", 0},
		{"POST, new answers 500: not replayed", func(t *testing.T) string {
			return newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }).URL
		}, "POST", nil, 500, "", 0},
		{"GET, fallback disabled", deadURL, "GET", boolPtr(false), 502, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			leg := newUpstream(t, ok("from legacy"))
			routes := []config.Route{{Name: "orders", Path: "/api/v1/orders/*", New: "orders", Canary: 100,
				Timeout: 200 * time.Millisecond, Fallback: tc.fallback}}
			r := start(t, testConfig(t, map[string]string{"legacy": leg.URL, "orders": tc.newUp(t)}, routes, nil), nil)
			req, _ := http.NewRequest(tc.method, r.url+"/api/v1/orders/1", strings.NewReader(`{"qty":1}`))
			resp, body := r.do(t, req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if got := resp.Header.Get(HeaderFallback); got != tc.wantHeader {
				t.Fatalf("X-Ficus-Fallback %q, want %q", got, tc.wantHeader)
			}
			if got := leg.hits.Load(); got != tc.legacyHits {
				t.Fatalf("legacy hits %d, want %d", got, tc.legacyHits)
			}
			wantFallbacks, backend := 0.0, "new"
			if tc.wantHeader != "" {
				wantFallbacks, backend = 1, "legacy"
				if string(body) != "from legacy" {
					t.Fatalf("body %q", body)
				}
				if got := r.counter(t, MetricDecisions, "route", "orders", "backend", "legacy", "reason", "fallback"); got != 1 {
					t.Fatalf("decision{reason=fallback} = %v", got)
				}
			}
			if resp.Header.Get(HeaderBackend) != backend {
				t.Fatalf("X-Ficus-Backend %q, want %q", resp.Header.Get(HeaderBackend), backend)
			}
			if got := r.counter(t, MetricFallbacks, "route", "orders", "from", "new", "to", "legacy"); got != wantFallbacks {
				t.Fatalf("fallbacks = %v, want %v", got, wantFallbacks)
			}
		})
	}
}

func breakerEdit(name string, b config.Breaker) func(*config.Config) {
	return func(c *config.Config) {
		u := c.Upstreams[name]
		u.Breaker = b
		c.Upstreams[name] = u
	}
}

func TestNewDownServedByLegacyWithoutClientErrors(t *testing.T) {
	t.Parallel()
	leg := newUpstream(t, ok("from legacy"))
	routes := []config.Route{{Name: "products", Path: "/api/v1/products/*", New: "catalog", Canary: 100}}
	cfg := testConfig(t, map[string]string{"legacy": leg.URL, "catalog": deadURL(t)}, routes,
		breakerEdit("catalog", config.Breaker{ConsecutiveFailures: 2, MinRequests: 100, FailureRatio: 1, OpenFor: time.Hour, Window: 10 * time.Second, HalfOpenProbes: 1}))
	r := start(t, cfg, nil)
	var reasons []string
	for range 5 {
		resp, body := r.get(t, "/api/v1/products/sku-1")
		if resp.StatusCode != 200 || string(body) != "from legacy" {
			t.Fatalf("client saw %d %q", resp.StatusCode, body)
		}
		reasons = append(reasons, resp.Header.Get(HeaderFallback))
	}
	if got := strings.Join(reasons, ","); got != "connect,connect,breaker_open,breaker_open,breaker_open" {
		t.Fatalf("fallback reasons %s", got)
	}
	if r.gw.Breakers()["catalog"] != "open" || r.counter(t, MetricBreakerState, LabelUpstream, "catalog") != 2 {
		t.Fatalf("breaker %v, gauge %v", r.gw.Breakers(), r.counter(t, MetricBreakerState, LabelUpstream, "catalog"))
	}
	if got := r.counter(t, MetricFallbacks, "route", "products", "from", "new", "to", "legacy"); got != 5 {
		t.Fatalf("fallbacks = %v", got)
	}
	if got := r.counter(t, MetricUpstreamErrors, "route", "products", "backend", "new", "reason", "breaker_open"); got != 3 {
		t.Fatalf("breaker_open errors = %v", got)
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	cat := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte("fine"))
	})
	leg := newUpstream(t, ok("legacy"))
	routes := []config.Route{{Name: "products", Path: "/p/*", New: "catalog", Canary: 100, Fallback: boolPtr(false)}}
	cfg := testConfig(t, map[string]string{"legacy": leg.URL, "catalog": cat.URL}, routes,
		breakerEdit("catalog", config.Breaker{ConsecutiveFailures: 3, MinRequests: 100, FailureRatio: 1, OpenFor: 100 * time.Millisecond, Window: 10 * time.Second, HalfOpenProbes: 1}))
	r := start(t, cfg, nil)
	for i := range 3 {
		if resp, _ := r.get(t, "/p/1"); resp.StatusCode != 503 || resp.Header.Get("Content-Type") == "application/json; charset=utf-8" {
			t.Fatalf("request %d: the upstream's own 503 should be relayed, got %d", i, resp.StatusCode)
		}
	}
	if got := r.gw.Breakers()["catalog"]; got != "open" {
		t.Fatalf("breaker %s after 3 failures", got)
	}
	resp, body := r.get(t, "/p/1")
	if e := decodeErr(t, body); resp.StatusCode != 503 || e.Code != CodeBackendUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("open breaker answered %d %s", resp.StatusCode, body)
	}
	if cat.hits.Load() != 3 {
		t.Fatalf("the open breaker let a request through (hits %d)", cat.hits.Load())
	}
	failing.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for r.gw.Breakers()["catalog"] == "open" {
		if time.Now().After(deadline) {
			t.Fatal("breaker never left open")
		}
		time.Sleep(10 * time.Millisecond) // polling a state that changes on its own clock
	}
	if got := r.gw.Breakers()["catalog"]; got != "half-open" {
		t.Fatalf("breaker %s, want half-open", got)
	}
	if resp, body := r.get(t, "/p/1"); resp.StatusCode != 200 || string(body) != "fine" {
		t.Fatalf("probe answered %d %q", resp.StatusCode, body)
	}
	if got := r.gw.Breakers()["catalog"]; got != "closed" || r.counter(t, MetricBreakerState, LabelUpstream, "catalog") != 0 {
		t.Fatalf("breaker %s after a successful probe", got)
	}
}

func TestRetriesOnlySafeAndBounded(t *testing.T) {
	t.Parallel()
	routes := []config.Route{{Name: "flaky", Path: "/f/*", Retries: 2}}
	cfg := testConfig(t, map[string]string{"legacy": deadURL(t)}, routes, breakerEdit("legacy", config.Breaker{Disabled: true, FailureRatio: 1}))
	r := start(t, cfg, nil)
	resp, _ := r.get(t, "/f/1")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := r.counter(t, MetricRetries, "route", "flaky", "backend", "legacy"); got != 2 {
		t.Fatalf("retries = %v, want 2", got)
	}
	if got := r.counter(t, MetricUpstreamErrors, "route", "flaky", "reason", "connect"); got != 3 {
		t.Fatalf("connect errors = %v, want 3 attempts", got)
	}
	req, _ := http.NewRequest(http.MethodPost, r.url+"/f/1", strings.NewReader("x"))
	if resp, _ := r.do(t, req); resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := r.counter(t, MetricRetries, "route", "flaky", "backend", "legacy"); got != 2 {
		t.Fatalf("a POST was retried: retries = %v", got)
	}
}

func TestRetryRecoversWhenUpstreamComesBack(t *testing.T) {
	t.Parallel()
	// The first dial fails, the next one succeeds: the listener is closed
	// while the dial hook counts, and reopened on the same port.
	up := newUpstream(t, ok("back"))
	routes := []config.Route{{Name: "flaky", Path: "/f/*", Retries: 1}}
	cfg := testConfig(t, map[string]string{"legacy": up.URL}, routes, nil)
	var dials atomic.Int32
	r := start(t, cfg, func(o *Options) {
		o.Dial = func(upstream, addr string) (net.Conn, error) {
			if dials.Add(1) == 1 {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errRefused}
			}
			return net.Dial("tcp", addr)
		}
	})
	resp, body := r.get(t, "/f/1")
	if resp.StatusCode != 200 || string(body) != "back" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if got := r.counter(t, MetricRetries, "route", "flaky", "backend", "legacy"); got != 1 {
		t.Fatalf("retries = %v", got)
	}
}

type refusedErr struct{}

func (refusedErr) Error() string { return "connection refused" }

var errRefused = refusedErr{}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, ok("x"))
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	routes := []config.Route{{Name: "limited", Path: "/l/*", RateLimit: config.RateLimit{RPS: 1, Burst: 2}}}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, routes, nil), func(o *Options) {
		o.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	for i := range 2 {
		if resp, _ := r.get(t, "/l/1"); resp.StatusCode != 200 {
			t.Fatalf("request %d within burst: %d", i, resp.StatusCode)
		}
	}
	resp, body := r.get(t, "/l/1")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e := decodeErr(t, body); e.Code != CodeRateLimited {
		t.Fatalf("code %s", e.Code)
	}
	if up.hits.Load() != 2 || r.counter(t, MetricRateLimited, "route", "limited") != 1 {
		t.Fatalf("hits %d, rate limited %v", up.hits.Load(), r.counter(t, MetricRateLimited, "route", "limited"))
	}
	if resp, _ := r.get(t, "/other"); resp.StatusCode != 200 {
		t.Fatal("the limit leaked onto another route")
	}
	now.Add(int64(time.Second))
	if resp, _ := r.get(t, "/l/1"); resp.StatusCode != 200 {
		t.Fatalf("a token did not refill after 1s: %d", resp.StatusCode)
	}
}

func TestRouteStats(t *testing.T) {
	t.Parallel()
	cat := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/bad") {
			w.WriteHeader(500)
		}
	})
	leg := newUpstream(t, ok("x"))
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	routes := []config.Route{{Name: "products", Path: "/p/*", New: "catalog", Canary: 100, Fallback: boolPtr(false)}}
	r := start(t, testConfig(t, map[string]string{"legacy": leg.URL, "catalog": cat.URL}, routes, nil), func(o *Options) {
		o.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	for _, p := range []string{"/p/1", "/p/2", "/p/bad"} {
		r.get(t, p)
		now.Add(int64(10 * time.Second))
	}
	st := r.gw.RouteStats("products")
	if st["new"].RequestsPerSec != 3.0/60 || st["new"].ErrorsPerSec != 1.0/60 || st["legacy"].RequestsPerSec != 0 {
		t.Fatalf("stats %+v", st)
	}
	now.Add(int64(45 * time.Second)) // the first two requests are now over a minute old
	if st := r.gw.RouteStats("products"); st["new"].RequestsPerSec != 1.0/60 {
		t.Fatalf("stats after a minute %+v", st)
	}
	if r.gw.RouteStats("nope") != nil {
		t.Fatal("unknown route has stats")
	}
}

type panicky struct{}

func (panicky) Decide(*fiber.Ctx, int, string) decide.Decision { panic("decider bug") }

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, ok("x"))
	routes := []config.Route{{Name: "p", Path: "/p/*", New: "catalog", Canary: 100}}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL, "catalog": up.URL}, routes, nil), func(o *Options) {
		o.Decider = panicky{}
	})
	resp, body := r.get(t, "/p/1")
	if e := decodeErr(t, body); resp.StatusCode != 500 || e.Code != CodeInternal || strings.Contains(e.Message, "decider bug") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := r.get(t, "/other"); resp.StatusCode != 200 {
		t.Fatal("gateway did not survive the panic")
	}
	if up.hits.Load() != 1 {
		t.Fatalf("hits %d", up.hits.Load())
	}
}
