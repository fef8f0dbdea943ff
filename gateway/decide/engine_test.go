package decide

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ficus-gw/ficus/config"
)

const users = 10000

// sides decides once for each of n users on route and returns who went new.
func sides(t *testing.T, e *Engine, app *fiber.App, route int, n int) []bool {
	t.Helper()
	out := make([]bool, n)
	for i := range n {
		d := decideOne(e, app, route, "req", user(fmt.Sprintf("user-%d", i)))
		out[i] = d.Backend == New
	}
	return out
}

func share(xs []bool) float64 {
	n := 0
	for _, x := range xs {
		if x {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

func TestCanarySplitsUsersStickily(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, nil)
	app := fiber.New()
	route := routeIndex(t, cfg, "catalog") // canary 25
	newUsers := 0
	for i := range users {
		withCtx(app, user(fmt.Sprintf("user-%d", i)), func(c *fiber.Ctx) {
			first := e.Decide(c, route, "req-0")
			if first.Reason != ReasonCanary {
				t.Fatalf("user-%d: reason %v, want canary", i, first.Reason)
			}
			if first.Backend == New {
				newUsers++
			}
			for r := 1; r < 100; r++ {
				if d := e.Decide(c, route, fmt.Sprint("req-", r)); d != first {
					t.Fatalf("user-%d request %d: %v, first request got %v", i, r, d, first)
				}
			}
		})
	}
	if got := float64(newUsers) / users; math.Abs(got-0.25) > 0.015 {
		t.Fatalf("%.2f%% of users on new, want 25%% ± 1.5%%", got*100)
	}
}

func TestRaisingCanaryOnlyMovesUsersToNew(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, nil)
	app := fiber.New()
	route := routeIndex(t, cfg, "catalog")
	before := sides(t, e, app, route, users)
	if _, err := e.SetCanary("catalog", 50); err != nil {
		t.Fatal(err)
	}
	after := sides(t, e, app, route, users)
	for i := range before {
		if before[i] && !after[i] {
			t.Fatalf("user-%d moved new -> legacy when the canary went 25 -> 50", i)
		}
	}
	if got := share(after); math.Abs(got-0.5) > 0.015 {
		t.Fatalf("%.2f%% of users on new at 50%%", got*100)
	}
}

func TestSharedCohortKeepsUserOnOneSide(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, nil)
	app := fiber.New()
	cart := sides(t, e, app, routeIndex(t, cfg, "cart"), 2000)
	orders := sides(t, e, app, routeIndex(t, cfg, "orders"), 2000)
	for i := range cart {
		if cart[i] != orders[i] {
			t.Fatalf("user-%d: cart new=%v, orders new=%v; routes share cohort checkout", i, cart[i], orders[i])
		}
	}
	// A different cohort buckets independently: some users must differ.
	if _, err := e.SetCanary("catalog", 30); err != nil {
		t.Fatal(err)
	}
	catalog := sides(t, e, app, routeIndex(t, cfg, "catalog"), 2000)
	differ := 0
	for i := range cart {
		if cart[i] != catalog[i] {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("catalog (own cohort) put every user on the same side as cart: cohorts are not independent")
	}
}

func TestNoUserKeySplitsByRequestID(t *testing.T) {
	t.Parallel()
	cfg := testConfig(func(c *config.Config) { c.Routing.UserKey = config.UserKey{Header: "X-User-Id"} })
	e, _ := newTestEngine(t, cfg, nil)
	app := fiber.New()
	route := routeIndex(t, cfg, "catalog")
	newReqs := 0
	for i := range users {
		id := fmt.Sprintf("req-%d", i)
		d := decideOne(e, app, route, id, request{})
		if again := decideOne(e, app, route, id, request{}); again != d {
			t.Fatalf("request id %s decided %v then %v", id, d, again)
		}
		if d.Backend == New {
			newReqs++
		}
	}
	if got := float64(newReqs) / users; math.Abs(got-0.25) > 0.015 {
		t.Fatalf("%.2f%% of anonymous requests on new, want 25%% ± 1.5%%", got*100)
	}
}

func TestUserKeySources(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, nil)
	app := fiber.New()
	route := routeIndex(t, cfg, "catalog")
	jwt := func(payload string) string {
		return "Bearer eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	for i := range 400 {
		id := fmt.Sprintf("user-%d", i)
		byHeader := decideOne(e, app, route, "r1", user(id))
		tests := []struct {
			name string
			req  request
		}{
			{"cookie", request{cookie: [2]string{"uid", id}}},
			{"jwt sub", request{headers: map[string]string{"Authorization": jwt(`{"iss":"x","nested":{"sub":"no"},"sub":"` + id + `"}`)}}},
			{"header wins over jwt", request{headers: map[string]string{"X-User-Id": id, "Authorization": jwt(`{"sub":"someone-else"}`)}}},
		}
		for _, tc := range tests {
			// Different request ids: only the user key may decide.
			if d := decideOne(e, app, route, "r2", tc.req); d != byHeader {
				t.Fatalf("%s: user %s got %v via %s, %v via header", tc.name, id, d, tc.name, byHeader)
			}
		}
	}
}

func TestPinAndResume(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, reg := newTestEngine(t, cfg, nil)
	app := fiber.New()
	route := routeIndex(t, cfg, "catalog")
	from, err := e.Pin("catalog", New)
	if err != nil || from.Pinned != "" || from.Canary != 25 {
		t.Fatalf("Pin: from %+v, err %v", from, err)
	}
	for i := range 200 {
		if d := decideOne(e, app, route, "r", user(fmt.Sprint("u", i))); d != (Decision{New, ReasonPinned}) {
			t.Fatalf("pinned route decided %v", d)
		}
	}
	if st, _ := e.State("catalog"); st.Pinned != "new" {
		t.Fatalf("State after pin: %+v", st)
	}
	from, err = e.Resume("catalog")
	if err != nil || from.Pinned != "new" {
		t.Fatalf("Resume: from %+v, err %v", from, err)
	}
	if got := share(sides(t, e, app, route, 4000)); math.Abs(got-0.25) > 0.03 {
		t.Fatalf("after resume %.1f%% new, want the 25%% canary back", got*100)
	}
	if _, err := e.SetCanary("catalog", 12.5); err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, reg, MetricCanaryPercent, "catalog"); v != 12.5 {
		t.Fatalf("%s{route=catalog} = %v, want 12.5", MetricCanaryPercent, v)
	}
}

// metricValue reads a counter or gauge with label route=route from reg
// (0 when the series does not exist yet).
func metricValue(t *testing.T, reg *prometheus.Registry, name, route string) float64 {
	t.Helper()
	return metricstest.Value(t, reg, name, "route", route)
}

func TestStateChangesRejectBadInput(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, nil)
	tests := []struct {
		name string
		call func() (RouteState, error)
		want error
	}{
		{"percent above 100", func() (RouteState, error) { return e.SetCanary("catalog", 100.01) }, ErrInvalidPercent},
		{"negative percent", func() (RouteState, error) { return e.SetCanary("catalog", -1) }, ErrInvalidPercent},
		{"NaN percent", func() (RouteState, error) { return e.SetCanary("catalog", math.NaN()) }, ErrInvalidPercent},
		{"canary on legacy-only route", func() (RouteState, error) { return e.SetCanary("legacyonly", 5) }, ErrNoNewBackend},
		{"pin new on legacy-only route", func() (RouteState, error) { return e.Pin("legacyonly", New) }, ErrNoNewBackend},
		{"unknown route", func() (RouteState, error) { return e.SetCanary("nope", 5) }, ErrUnknownRoute},
		{"unknown route pin", func() (RouteState, error) { return e.Pin("nope", Legacy) }, ErrUnknownRoute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if st, _ := e.State("catalog"); st.Canary != 25 || st.Pinned != "" {
		t.Fatalf("a rejected change altered state: %+v", st)
	}
	if _, err := e.Pin("legacyonly", Legacy); err != nil {
		t.Fatalf("pinning a legacy-only route to legacy: %v", err)
	}
}

func TestDefaultRouteAndOutOfRange(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, nil)
	app := fiber.New()
	for _, route := range []int{len(cfg.Routes), -1, len(cfg.Routes) + 1} {
		if d := decideOne(e, app, route, "r", user("u1")); d != (Decision{Legacy, ReasonDefault}) {
			t.Fatalf("route %d: %v, want legacy/default", route, d)
		}
	}
	states := e.States()
	if len(states) != len(cfg.Routes)+1 || states[len(states)-1].Name != "default" {
		t.Fatalf("States() = %+v, want every route and the default route last", states)
	}
}

func TestOverride(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, reg := newTestEngine(t, cfg, nil)
	app := fiber.New()
	if _, err := e.SetCanary("catalog", 0); err != nil { // without override: legacy/default
		t.Fatal(err)
	}
	catalog, legacyOnly := routeIndex(t, cfg, "catalog"), routeIndex(t, cfg, "legacyonly")
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{"X-User-Id": "u1"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		route    int
		req      request
		want     Decision
		rejected bool
	}{
		{"no token", catalog, request{headers: hdr("X-Ficus-Backend", "new")}, Decision{Legacy, ReasonDefault}, true},
		{"wrong token", catalog, request{headers: hdr("X-Ficus-Backend", "new", "X-Ficus-Override-Token", "tester-token-0123456780")}, Decision{Legacy, ReasonDefault}, true},
		{"token prefix", catalog, request{headers: hdr("X-Ficus-Backend", "new", "X-Ficus-Override-Token", "tester")}, Decision{Legacy, ReasonDefault}, true},
		{"valid token", catalog, request{headers: hdr("X-Ficus-Backend", "new", "X-Ficus-Override-Token", testOverrideToken)}, Decision{New, ReasonOverride}, false},
		{"valid token, legacy", catalog, request{headers: hdr("X-Ficus-Backend", "legacy", "X-Ficus-Override-Token", testOverrideToken)}, Decision{Legacy, ReasonOverride}, false},
		{"valid token, unknown backend", catalog, request{headers: hdr("X-Ficus-Backend", "shiny", "X-Ficus-Override-Token", testOverrideToken)}, Decision{Legacy, ReasonDefault}, true},
		{"trusted network", catalog, request{headers: hdr("X-Ficus-Backend", "new"), remote: "10.1.200.7"}, Decision{New, ReasonOverride}, false},
		{"trusted network, IPv4-mapped IPv6", catalog, request{headers: hdr("X-Ficus-Backend", "new"), remote: "::ffff:10.1.0.9"}, Decision{New, ReasonOverride}, false},
		{"untrusted network", catalog, request{headers: hdr("X-Ficus-Backend", "new"), remote: "10.2.0.1"}, Decision{Legacy, ReasonDefault}, true},
		{"legacy-only route ignores override", legacyOnly, request{headers: hdr("X-Ficus-Backend", "new", "X-Ficus-Override-Token", testOverrideToken)}, Decision{Legacy, ReasonDefault}, false},
	}
	for _, tc := range tests {
		name := cfg.Routes[tc.route].Name
		before := metricValue(t, reg, MetricOverrideRejected, name)
		if d := decideOne(e, app, tc.route, "r", tc.req); d != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, d, tc.want)
		}
		after := metricValue(t, reg, MetricOverrideRejected, name)
		if rejected := after == before+1; rejected != tc.rejected || after > before+1 {
			t.Errorf("%s: %s went %v -> %v, want rejected=%v", tc.name, MetricOverrideRejected, before, after, tc.rejected)
		}
	}
	// An override beats an operator pin (testers must reach the other side).
	if _, err := e.Pin("catalog", Legacy); err != nil {
		t.Fatal(err)
	}
	if d := decideOne(e, app, catalog, "r", request{headers: hdr("X-Ficus-Backend", "new", "X-Ficus-Override-Token", testOverrideToken)}); d != (Decision{New, ReasonOverride}) {
		t.Fatalf("override on a pinned route: %v", d)
	}
}

func TestConcurrentSetCanaryUnderDecide(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, nil)
	app := fiber.New()
	route := routeIndex(t, cfg, "catalog")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := decideOne(e, app, route, "r", user(fmt.Sprintf("w%d-u%d", w, i%500)))
				if d.Reason != ReasonCanary && d.Reason != ReasonDefault && d.Reason != ReasonPinned {
					errs <- fmt.Errorf("unexpected decision %v", d)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for p := 0; p <= 100; p++ {
				if _, err := e.SetCanary("catalog", float64((p+w*50)%101)); err != nil {
					errs <- err
					return
				}
				if p%10 == 0 {
					_, _ = e.Pin("catalog", New)
					_, _ = e.Resume("catalog")
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := e.SetCanary("catalog", 50); err != nil {
		t.Fatal(err)
	}
	if got := share(sides(t, e, app, route, 4000)); math.Abs(got-0.5) > 0.03 {
		t.Fatalf("after the storm, 50%% canary gives %.1f%% new", got*100)
	}
}

// TestSequentialUserIDsSplitEvenly guards the bucket hash against keys
// that differ only in their last characters, as generated ids do.
func TestSequentialUserIDsSplitEvenly(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1000, 10000} {
		under := 0
		for i := 1; i <= n; i++ {
			if bucket([]byte(fmt.Sprintf("bench-user-%d", i)), "bench") < 50*bucketsPerPercent {
				under++
			}
		}
		// Binomial n, p=0.5: three standard deviations. The keys are fixed,
		// so the outcome is too (no flakiness); plain FNV-1a fails here
		// with 55.9 % and 51.9 %.
		if dev := math.Abs(float64(under)/float64(n) - 0.5); dev > 3*0.5/math.Sqrt(float64(n)) {
			t.Errorf("%d sequential ids at 50%%: %.1f%% below the line", n, 100*float64(under)/float64(n))
		}
	}
}
