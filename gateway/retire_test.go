package gateway

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// TestRetirementReportThroughTheGateway: two legacy routes and a migrated
// one; the catalog route stops being called, so after the window it is
// ready to delete, while the order route is still in use by the one client
// that keeps calling it. Requests served by the new side leave no trace.
func TestRetirementReportThroughTheGateway(t *testing.T) {
	t.Parallel()
	legacy := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	newSide := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	cfg := testConfig(t, map[string]string{"legacy": legacy.URL, "catalog": newSide.URL}, []config.Route{
		{Name: "catalog", Path: "/shop/catalog.do"},
		{Name: "orders", Path: "/shop/orderStatus.do"},
		{Name: "products", Path: "/api/v1/products/*", New: "catalog", Canary: 100},
	}, nil)

	var now atomic.Int64
	now.Store(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "retire.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	names := []string{"catalog", "orders", "products", cfg.DefaultRoute.Name}
	tr, err := retire.New(context.Background(), retire.Options{
		Config: config.Retire{Window: 48 * time.Hour, Caller: "user-agent", MaxCallers: 10}, Routes: names, DB: db, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	g := start(t, cfg, func(o *Options) { o.LegacyHits = tr; o.Now = clock })

	get := func(path, ua string) {
		t.Helper()
		req, _ := http.NewRequest("GET", g.url+path, nil)
		req.Header.Set("User-Agent", ua)
		resp, err := g.clients.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	get("/shop/catalog.do?page=1", "storefront/7")
	get("/shop/orderStatus.do?ord_no=1", "storefront/7")
	get("/api/v1/products/ART-1", "storefront/7")
	// Three days pass; only the call-centre tool still asks for order status.
	for day := 0; day < 3; day++ {
		now.Add(int64(24 * time.Hour))
		get("/shop/orderStatus.do?ord_no=2", "callcentre-tool/1.2")
		get("/api/v1/products/ART-1", "storefront/7")
	}

	rep := tr.Report(0)
	byName := map[string]retire.RouteReport{}
	for _, r := range rep.Routes {
		byName[r.Route] = r
	}
	if c := byName["catalog"]; c.Status != retire.StatusReady {
		t.Fatalf("catalog: %+v, want %s", c, retire.StatusReady)
	}
	o := byName["orders"]
	if o.Status != retire.StatusInUse || len(o.Callers) != 1 || o.Callers[0].ID != "callcentre-tool/1.2" || o.Callers[0].Hits != 3 {
		t.Fatalf("orders: %+v, want in use by callcentre-tool/1.2 alone (3 hits)", o)
	}
	if p := byName["products"]; p.LastLegacyHit != nil {
		t.Fatalf("products is served by the new side only, yet shows a legacy hit at %v", p.LastLegacyHit)
	}
}
