package shadow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/gofiber/fiber/v2"
)

func testProducts() map[string]product {
	return map[string]product{
		"B1": newProduct("B1", "books", 1299),
		"B2": newProduct("B2", "books", 550),
		"T1": newProduct("T1", "tools", 1299),
		"T2": newProduct("T2", "tools", 4999),
		"T3": newProduct("T3", "tools", 250),
	}
}

// roundTools is the seeded discrepancy: the new side rounds the prices of
// one category to whole euros.
func roundTools(p product) any {
	if p.Category == "tools" {
		p.Price.AmountMinor = (p.Price.AmountMinor + 50) / 100 * 100
	}
	return p
}

func TestSeededDiscrepancyIsAttributedToRouteAndField(t *testing.T) {
	t.Parallel()
	products := testProducts()
	leg := catalogServer(t, products, nil)
	nw := catalogServer(t, products, roundTools)
	cfg := baseConfig(t, leg.URL, nw.URL, &config.Shadow{Percent: 100, Samples: 3}, func(c *config.Config) {
		// A second shadowed route that must not receive the blame.
		c.Routes = append(c.Routes, config.Route{Name: "other", Path: "/api/v1/other/*", Legacy: "legacy", New: "new",
			Shadow: &config.Shadow{Percent: 100}})
	})
	e := startGateway(t, cfg, nil)

	const rounds = 10
	skus := []string{"B1", "B2", "T1", "T2", "T3", "MISSING"}
	for range rounds {
		for _, sku := range skus {
			resp, _ := e.get(t, "/api/v1/products/"+sku)
			if got := resp.Header.Get(gateway.HeaderBackend); got != "legacy" {
				t.Fatalf("backend %q served the primary; want legacy", got)
			}
		}
	}
	total := uint64(rounds * len(skus))
	r := e.settled(t, "products", total)
	if got, want := r.Results["diff"], uint64(rounds*3); got != want {
		t.Errorf("diff results = %d, want %d (three tools, %d rounds); results %v", got, want, rounds, r.Results)
	}
	if got, want := r.Results["match"], uint64(rounds*3); got != want {
		t.Errorf("match results = %d, want %d (two books and a 404); results %v", got, want, r.Results)
	}
	if len(r.Fields) != 1 || r.Fields[0].Field != "/price/amountMinor" || !r.Fields[0].Real || r.Fields[0].Diffs != rounds*3 {
		t.Errorf("fields = %+v, want only /price/amountMinor, real, %d diffs", r.Fields, rounds*3)
	}
	if got := counter(t, e.reg, shadow.MetricFieldDiffs, "route", "products", "field", "/price/amountMinor"); got != rounds*3 {
		t.Errorf("%s{products,/price/amountMinor} = %v, want %d", shadow.MetricFieldDiffs, got, rounds*3)
	}
	if got := counter(t, e.reg, shadow.MetricRequests, "route", "other", "result", "diff"); got != 0 {
		t.Errorf("route other has %v diffs; it served nothing", got)
	}
	if got := nw.marked.Load(); got != int64(total) {
		t.Errorf("new side saw %d requests with %s: 1, want %d", got, shadow.HeaderShadow, total)
	}
	// 30 differing exchanges, 3 kept: the store prunes as it writes.
	if len(r.Samples) != 3 {
		t.Fatalf("%d samples kept, want the latest 3", len(r.Samples))
	}
	for _, s := range r.Samples {
		if !strings.HasPrefix(s.Path, "/api/v1/products/T") || s.Method != "GET" || len(s.Differences) != 1 ||
			s.Differences[0].Path != "/price/amountMinor" || s.RequestID == "" {
			t.Errorf("sample %+v: want a GET of a tools product differing in /price/amountMinor", s)
		}
	}

	// The admin handler, the client and the table renderer show the same.
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	h := e.gw.Shadow().Handler()
	app.Get(shadow.AdminPath, h)
	app.Get(shadow.AdminPath+"/:route", h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	base := "http://" + ln.Addr().String() + shadow.AdminPath
	var all []shadow.Report
	getReport(t, base, &all)
	if len(all) != 2 || all[0].Route != "products" || all[1].Route != "other" {
		t.Fatalf("reports of every route = %+v, want products and other", all)
	}
	one := []shadow.Report{{}}
	getReport(t, base+"/products", &one[0])
	var out bytes.Buffer
	if err := shadow.RenderReport(&out, one[0]); err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || len(one[0].Samples) != 3 {
		t.Fatalf("report of products over HTTP: %+v, want one report with 3 samples", one)
	}
	newest := one[0].Samples[0]
	for _, want := range []string{"route products", "/price/amountMinor", "REAL", "diff rate 50.00%",
		newest.RequestID, newest.Path, newest.Differences[0].Shadow} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rendered report lacks %q:\n%s", want, out.String())
		}
	}
	res, err := http.Get(base + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "NOT_FOUND") {
		t.Errorf("report of an unknown route: %d %s, want 404 NOT_FOUND", res.StatusCode, body)
	}
}

func TestNondeterministicFieldIsNoise(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		noise    bool
		wantReal bool
		wantDiff uint64
	}{
		{"with noise cancellation", true, false, 0},
		{"without noise cancellation", false, true, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seq atomic.Int64
			// Every answer carries a fresh generated id, on both sides.
			stamp := func(p product) any {
				return map[string]any{"product": p, "generatedId": fmt.Sprintf("gen-%d", seq.Add(1))}
			}
			products := testProducts()
			leg := catalogServer(t, products, stamp)
			nw := catalogServer(t, products, stamp)
			e := startGateway(t, baseConfig(t, leg.URL, nw.URL, &config.Shadow{Percent: 100, Noise: tc.noise}, nil), nil)
			for i := range 20 {
				e.get(t, "/api/v1/products/B"+fmt.Sprint(1+i%2))
			}
			r := e.settled(t, "products", 20)
			f, ok := field(r, "/generatedId")
			if !ok {
				t.Fatalf("field /generatedId not reported: %+v", r.Fields)
			}
			if f.Real != tc.wantReal {
				t.Errorf("/generatedId real = %v, want %v (diff rate %v, noise rate %v)", f.Real, tc.wantReal, f.DiffRate, f.NoiseRate)
			}
			if r.Results["diff"] != tc.wantDiff {
				t.Errorf("diff results = %d, want %d: %v", r.Results["diff"], tc.wantDiff, r.Results)
			}
			if tc.noise && (r.NoiseCompared != 20 || f.NoiseRate != 1) {
				t.Errorf("noise compared %d, noise rate %v; want 20 and 1", r.NoiseCompared, f.NoiseRate)
			}
		})
	}
}

func TestExpiredIgnoreRuleStopsApplying(t *testing.T) {
	t.Parallel()
	products := testProducts()
	leg := catalogServer(t, products, nil)
	nw := catalogServer(t, products, func(p product) any { p.UpdatedAt = "2026-02-02T10:00:00Z"; return p })
	rule := config.IgnoreRule{Path: "/updatedAt", Owner: "team-catalog", Reason: "sync lag until backfill", Expires: "2026-03-01"}
	clk := newClock(time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC))
	cfg := baseConfig(t, leg.URL, nw.URL, &config.Shadow{Percent: 100, Compare: config.Compare{Ignore: []config.IgnoreRule{rule}}}, nil)
	e := startGateway(t, cfg, func(o *gateway.Options) { o.Now = clk.now })

	for range 5 {
		e.get(t, "/api/v1/products/B1")
	}
	r := e.settled(t, "products", 5)
	if r.Results["match"] != 5 || len(r.ExpiredRules) != 0 {
		t.Fatalf("before expiry: results %v, expired %v; want 5 matches, no expired rule", r.Results, r.ExpiredRules)
	}
	if got := counter(t, e.reg, shadow.MetricExpiredRules, "route", "products"); got != 0 {
		t.Errorf("%s before expiry = %v, want 0", shadow.MetricExpiredRules, got)
	}

	clk.set(time.Date(2026, 3, 2, 0, 0, 1, 0, time.UTC))
	for range 5 {
		e.get(t, "/api/v1/products/B1")
	}
	r = e.settled(t, "products", 10)
	if r.Results["diff"] != 5 {
		t.Errorf("after expiry: results %v, want 5 diffs", r.Results)
	}
	if f, ok := field(r, "/updatedAt"); !ok || f.Diffs != 5 {
		t.Errorf("after expiry: /updatedAt = %+v, want 5 diffs", f)
	}
	if len(r.ExpiredRules) != 1 || r.ExpiredRules[0] != rule {
		t.Errorf("expired rules = %+v, want %+v", r.ExpiredRules, rule)
	}
	if got := counter(t, e.reg, shadow.MetricExpiredRules, "route", "products"); got != 1 {
		t.Errorf("%s after expiry = %v, want 1", shadow.MetricExpiredRules, got)
	}
}

// hangingServer accepts shadow requests and answers none until release is
// called (at the latest when the test ends); arrived receives one value per
// request. Call release before the gateway stops, or its drain waits for
// the hanging exchanges.
func hangingServer(t *testing.T) (url string, arrived <-chan struct{}, release func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	ch := make(chan struct{}, 10000)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		release()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String(), ch, release
}

func TestBrokenShadowTargetLeavesPrimaryAlone(t *testing.T) {
	// Not parallel: the goroutine count is process-wide.
	products := testProducts()
	cases := []struct {
		name   string
		target func(t *testing.T) (string, <-chan struct{}, func())
	}{
		{"hanging target", hangingServer},
		{"target down", func(t *testing.T) (string, <-chan struct{}, func()) { return deadURL(t), nil, func() {} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leg := catalogServer(t, products, nil)
			target, arrived, release := tc.target(t)
			cfg := baseConfig(t, leg.URL, target, &config.Shadow{Percent: 100, Concurrency: 4, Timeout: 30 * time.Second}, nil)
			e := startGateway(t, cfg, nil)
			t.Cleanup(release) // runs before the gateway's drain

			direct, err := http.Get(leg.URL + "/api/v1/products/T2")
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			_, _ = want.ReadFrom(direct.Body)
			direct.Body.Close()

			// The primary answers while the shadow target still holds the
			// copy: the hanging handler cannot return before the test ends.
			resp, body := e.get(t, "/api/v1/products/T2")
			if resp.StatusCode != direct.StatusCode || !bytes.Equal(body, want.Bytes()) {
				t.Fatalf("primary = %d %q, want %d %q", resp.StatusCode, body, direct.StatusCode, want.Bytes())
			}
			if arrived != nil {
				select {
				case <-arrived:
				case <-time.After(10 * time.Second):
					t.Fatal("the shadow copy never reached the target")
				}
			}

			base := runtime.NumGoroutine()
			var peak atomic.Int64
			var wg sync.WaitGroup
			var bad atomic.Int64
			const n, workers = 1000, 8
			jobs := make(chan int, n)
			for i := range n {
				jobs <- i
			}
			close(jobs)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range jobs {
						resp, err := e.client.Get(e.url + "/api/v1/products/T2")
						if err != nil {
							bad.Add(1)
							continue
						}
						var got bytes.Buffer
						_, _ = got.ReadFrom(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != direct.StatusCode || !bytes.Equal(got.Bytes(), want.Bytes()) {
							bad.Add(1)
						}
						if g := int64(runtime.NumGoroutine()); g > peak.Load() {
							peak.Store(g)
						}
					}
				}()
			}
			wg.Wait()
			if bad.Load() != 0 {
				t.Errorf("%d of %d primary answers differed from the direct answer or failed", bad.Load(), n)
			}
			r, err := e.gw.Shadow().Report("products")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("results %v; goroutines baseline %d, peak %d", r.Results, base, peak.Load())
			if r.Results["dropped"] == 0 {
				t.Errorf("no request dropped with a broken target and 4 workers: %v", r.Results)
			}
			// 8 clients with their connections on both ends, at most 4
			// shadow workers and the upstreams' handlers: a few dozen. A
			// goroutine per mirrored request would be about a thousand.
			if limit := int64(base + 100); peak.Load() > limit {
				t.Errorf("goroutines peaked at %d, want at most %d (baseline %d)", peak.Load(), limit, base)
			}
		})
	}
}

func TestCloseWaitsBoundedByContext(t *testing.T) {
	t.Parallel()
	products := testProducts()
	leg := catalogServer(t, products, nil)
	target, arrived, release := hangingServer(t)
	cfg := baseConfig(t, leg.URL, target, &config.Shadow{Percent: 100, Concurrency: 1, Timeout: 30 * time.Second}, nil)
	e := startGateway(t, cfg, nil)
	t.Cleanup(release)
	e.get(t, "/api/v1/products/B1")
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the shadow copy never reached the target")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.gw.Shadow().Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with a hanging exchange and a done context = %v, want context.Canceled", err)
	}
}

// getReport decodes the admin handler's JSON answer at u into v.
func getReport(t *testing.T, u string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
