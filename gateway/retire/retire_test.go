package retire

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	tr    *Tracker
	app   *fiber.App
	clock *clock
	reg   *prometheus.Registry
	db    *sqlitedb.DB
}

var routes = []string{"catalog", "checkout", "default"}

func newFixture(t *testing.T, cfg config.Retire, path string, clk *clock) *fixture {
	t.Helper()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := prometheus.NewRegistry()
	tr, err := New(context.Background(), Options{Config: cfg, Routes: routes, DB: db, Registry: reg, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	// A stand-in for the gateway's handler: the legacy side served route i.
	app.Get("/:route", func(c *fiber.Ctx) error {
		for i, r := range routes {
			if r == c.Params("route") {
				tr.Hit(i, c, clk.now())
			}
		}
		return c.SendStatus(200)
	})
	return &fixture{tr: tr, app: app, clock: clk, reg: reg, db: db}
}

func (f *fixture) call(t *testing.T, route, ua, key string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/"+route, nil)
	req.Header.Set("User-Agent", ua)
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	resp, err := f.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func statusOf(rep Report, route string) RouteReport {
	for _, r := range rep.Routes {
		if r.Route == route {
			return r
		}
	}
	return RouteReport{}
}

// TestRouteThatStopsBeingCalledBecomesReady is the case: one legacy
// route stops being called; after the window it is ready to delete while the
// other, still called, is in use with its callers named.
func TestRouteThatStopsBeingCalledBecomesReady(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	f := newFixture(t, config.Retire{Window: 72 * time.Hour, Caller: "user-agent", MaxCallers: 5}, filepath.Join(t.TempDir(), "r.db"), clk)

	f.call(t, "catalog", "shop-web/4.1", "")
	f.call(t, "checkout", "shop-web/4.1", "")
	f.call(t, "checkout", "mobile-app/2.0", "")

	rep := f.tr.Report(0)
	if s := statusOf(rep, "catalog").Status; s != StatusInUse {
		t.Fatalf("catalog right after a hit: %s, want %s", s, StatusInUse)
	}
	if s := statusOf(rep, "default").Status; s != StatusObserving {
		t.Fatalf("a route never hit, tracked for less than the window: %s, want %s", s, StatusObserving)
	}

	// Catalog traffic stops; checkout goes on, from the mobile app only.
	for day := 0; day < 4; day++ {
		f.clock.advance(24 * time.Hour)
		f.call(t, "checkout", "mobile-app/2.0", "")
	}
	rep = f.tr.Report(0)
	cat, chk, def := statusOf(rep, "catalog"), statusOf(rep, "checkout"), statusOf(rep, "default")
	if cat.Status != StatusReady || len(cat.Callers) != 0 {
		t.Fatalf("catalog after 4 silent days: %+v, want %s with no callers", cat, StatusReady)
	}
	if cat.LastLegacyHit == nil || !cat.LastLegacyHit.Equal(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("catalog last hit = %v, want the first call's time", cat.LastLegacyHit)
	}
	if chk.Status != StatusInUse || len(chk.Callers) != 1 || chk.Callers[0].ID != "mobile-app/2.0" || chk.Callers[0].Hits != 5 {
		t.Fatalf("checkout: %+v, want in use by mobile-app/2.0 only (5 hits); shop-web fell out of the window", chk)
	}
	if def.Status != StatusReady {
		t.Fatalf("default route, never hit, tracked longer than the window: %s", def.Status)
	}
	if rep.Routes[len(rep.Routes)-1].Route != "checkout" {
		t.Fatalf("in-use routes should come last: %+v", rep.Routes)
	}

	var out bytes.Buffer
	if err := Render(&out, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"catalog", StatusReady, "checkout is still called by:", "mobile-app/2.0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rendered report lacks %q:\n%s", want, out.String())
		}
	}
	if got := testutil.ToFloat64(f.tr.routes[0].gauge); got != float64(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).Unix()) {
		t.Fatalf("%s{route=catalog} = %v", MetricLastHit, got)
	}
}

func TestHistorySurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "r.db")
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	cfg := config.Retire{Window: 24 * time.Hour, Caller: "header", CallerHeader: "X-Api-Key", MaxCallers: 5}
	f := newFixture(t, cfg, path, clk)
	f.call(t, "catalog", "x", "secret-key-of-partner-a")
	f.call(t, "catalog", "x", "secret-key-of-partner-a")
	if err := f.tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.call(t, "catalog", "x", "secret-key-of-partner-a")
	if err := f.tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.db.Close()

	clk.advance(time.Hour)
	g := newFixture(t, cfg, path, clk)
	rep := g.tr.Report(0)
	cat := statusOf(rep, "catalog")
	if cat.Status != StatusInUse || len(cat.Callers) != 1 || cat.Callers[0].Hits != 3 {
		t.Fatalf("after restart: %+v, want in use with one caller of 3 hits", cat)
	}
	if id := cat.Callers[0].ID; !strings.HasPrefix(id, "key:") || strings.Contains(id, "secret") {
		t.Fatalf("an API key must be stored as a fingerprint, got %q", id)
	}
	if !rep.TrackingSince.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("tracking start moved on restart: %v", rep.TrackingSince)
	}
}

func TestCallersAreBounded(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	f := newFixture(t, config.Retire{Window: time.Hour, Caller: "user-agent", MaxCallers: 3}, filepath.Join(t.TempDir(), "r.db"), clk)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("GET", "/catalog", nil)
			req.Header.Set("User-Agent", "bot-"+string(rune('a'+i)))
			resp, err := f.app.Test(req, -1)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	cat := statusOf(f.tr.Report(0), "catalog")
	var total uint64
	other := false
	for _, c := range cat.Callers {
		total += c.Hits
		other = other || c.ID == OtherCallers
	}
	if len(cat.Callers) != 4 || !other || total != 20 {
		t.Fatalf("callers = %+v; want 3 named + %s holding the rest, 20 hits in all", cat.Callers, OtherCallers)
	}
}

func TestHandlerRejectsBadWindow(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	f := newFixture(t, config.Retire{Window: time.Hour, Caller: "ip"}, filepath.Join(t.TempDir(), "r.db"), clk)
	app := fiber.New()
	app.Get("/admin/retire", f.tr.Handler())
	resp, err := app.Test(httptest.NewRequest("GET", "/admin/retire?window=soon", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
}

func BenchmarkHit(b *testing.B) {
	clk := &clock{}
	db, err := sqlitedb.Open(filepath.Join(b.TempDir(), "r.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tr, err := New(context.Background(), Options{Config: config.Retire{Caller: "user-agent", MaxCallers: 20}, Routes: routes, DB: db, Now: clk.now})
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New()
	c := app.AcquireCtx(newRequestCtx("shop-web/4.1"))
	defer app.ReleaseCtx(c)
	b.ReportAllocs()
	for b.Loop() {
		tr.Hit(0, c, clk.now())
	}
}
