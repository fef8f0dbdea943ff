package gateway

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/gofiber/fiber/v2"
)

// countingHits is a LegacyHits that counts.
type countingHits struct{ n atomic.Int64 }

func (h *countingHits) Hit(int, *fiber.Ctx, time.Time) { h.n.Add(1) }

// TestDenyRoutesFenceLegacyAdmin: a fenced prefix answers its structured
// error for every method and every spelling of the path (dot segments,
// path parameters, escapes), and nothing reaches the upstream.
func TestDenyRoutesFenceLegacyAdmin(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, echoRequest)
	routes := []config.Route{
		{Name: "legacy-admin", Path: "/shop/admin/*", Deny: &config.Deny{}},
		{Name: "internal", Path: "/internal/*", Deny: &config.Deny{Status: 403, Code: "INTERNAL_ONLY", Message: "internal endpoints are not public"}},
		{Name: "shop", Path: "/shop/*"},
	}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, routes, nil), nil)
	cases := []struct{ method, path, code string }{
		{"GET", "/shop/admin/faults", "NOT_FOUND"},
		{"POST", "/shop/admin/faults", "NOT_FOUND"},
		{"DELETE", "/shop/admin", "NOT_FOUND"},
		{"GET", "/shop/admin;jsessionid=1/faults", "NOT_FOUND"},
		{"GET", "/shop/x/../admin/faults", "NOT_FOUND"},
		{"GET", "/shop/%61dmin/faults", "NOT_FOUND"},
		{"GET", "//shop//admin//faults", "NOT_FOUND"},
		{"GET", "/internal/metrics", "INTERNAL_ONLY"},
	}
	for _, tc := range cases {
		resp, body := rawExchange(t, r.addr, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
		if resp == nil {
			t.Fatalf("%s %s: no response", tc.method, tc.path)
		}
		if e := decodeErr(t, body); e.Code != tc.code {
			t.Fatalf("%s %s: %d %s, want %s", tc.method, tc.path, resp.StatusCode, e.Code, tc.code)
		}
		if want := map[string]int{"NOT_FOUND": 404, "INTERNAL_ONLY": 403}[tc.code]; resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, want)
		}
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("a fenced path reached the upstream %d times", n)
	}
	if resp, _ := r.get(t, "/shop/catalog.do"); resp.StatusCode != 200 {
		t.Fatalf("the unfenced rest of /shop: %d", resp.StatusCode)
	}
}

// TestRetirementCountsOnlyWhatLegacyServed: requests the gateway refused
// itself (fence, 405, 429, breaker open) or that never reached a working
// legacy are not legacy use; the tracker's hits equal the answers the
// legacy actually produced.
func TestRetirementCountsOnlyWhatLegacyServed(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	routes := []config.Route{
		{Name: "fenced", Path: "/shop/admin/*", Deny: &config.Deny{}},
		{Name: "limited", Path: "/shop/limited", RateLimit: config.RateLimit{RPS: 0.001, Burst: 2}},
		{Name: "post-only", Path: "/shop/placeOrder.do", Methods: []string{"POST"}},
		{Name: "gone", Path: "/gone/*", Legacy: "dead"},
	}
	cfg := testConfig(t, map[string]string{"legacy": up.URL, "dead": deadURL(t)}, routes, breakerEdit("dead",
		config.Breaker{ConsecutiveFailures: 2, MinRequests: 100, FailureRatio: 1, OpenFor: time.Hour, Window: 10 * time.Second, HalfOpenProbes: 1}))
	hits := &countingHits{}
	r := start(t, cfg, func(o *Options) { o.LegacyHits = hits })
	statuses := map[int]int{}
	for _, p := range []string{
		"/shop/admin/faults", "/shop/admin/faults", // fence
		"/shop/limited", "/shop/limited", "/shop/limited", "/shop/limited", // 2 served, 2 × 429
		"/shop/placeOrder.do", "/shop/placeOrder.do", // GET: 405
		"/gone/x", "/gone/x", "/gone/x", "/gone/x", // 502 twice, then breaker open 503
		"/shop/catalog.do", "/shop/catalog.do", // served
	} {
		resp, _ := r.get(t, p)
		statuses[resp.StatusCode]++
	}
	if statuses[404] != 2 || statuses[429] != 2 || statuses[405] != 2 || statuses[502] != 2 || statuses[503] != 2 || statuses[200] != 4 {
		t.Fatalf("statuses %v", statuses)
	}
	if got, served := hits.n.Load(), up.hits.Load(); got != served {
		t.Fatalf("retirement tracker recorded %d legacy hits; the legacy served %d", got, served)
	}
	if hits.n.Load() != 4 {
		t.Fatalf("hits %d, want 4", hits.n.Load())
	}
}

// seenIDs is a Decider that records the request id it was given.
type seenIDs struct{ last atomic.Pointer[string] }

func (s *seenIDs) Decide(_ *fiber.Ctx, _ int, id string) decide.Decision {
	id = strings.Clone(id)
	s.last.Store(&id)
	return decide.Decision{Backend: decide.Legacy, Reason: decide.ReasonDefault}
}

// TestDeciderSeesTheGatewaysRequestID: sticky bucketing by request id must
// use the id the gateway chose, never an untrusted client's.
func TestDeciderSeesTheGatewaysRequestID(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	dec := &seenIDs{}
	routes := []config.Route{{Name: "products", Path: "/api/v1/products/*", New: "catalog"}}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL, "catalog": up.URL}, routes, nil), func(o *Options) { o.Decider = dec })
	resp, _ := r.get(t, "/api/v1/products/A1", "X-Request-Id", "client-chosen")
	got := dec.last.Load()
	if got == nil || *got != resp.Header.Get("X-Request-Id") || *got == "client-chosen" {
		t.Fatalf("decider saw %v, the answer carries %q", got, resp.Header.Get("X-Request-Id"))
	}
}
