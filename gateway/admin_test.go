package gateway

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func TestAdminListener(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, ok("x"))
	routes := []config.Route{{Name: "shop", Path: "/shop/*"}}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, routes, nil), func(o *Options) {
		o.Admin = func(c *fiber.Ctx) error { return c.SendString("admin:" + c.Path()) }
	})
	r.get(t, "/shop/a")
	for _, tc := range []struct {
		path, want string
		status     int
	}{
		{"/healthz", `"ok"`, 200},
		{"/readyz", `"ready"`, 200},
		{"/admin/routes", "admin:/admin/routes", 200},
		{"/metrics", `ficus_requests_total{backend="legacy",code="200",method="GET",route="shop"} 1`, 200},
		{"/metrics", `ficus_breaker_state{upstream="legacy"} 0`, 200},
		{"/nothing", `"code":"NOT_FOUND"`, 404},
	} {
		resp, err := r.clients.Get(r.admin + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %.300s, want %d containing %s", tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
	}
	// The public listener does not serve operator endpoints: /metrics there
	// is just a path proxied to the legacy.
	if resp, body := r.get(t, "/metrics"); resp.Header.Get(HeaderRoute) != "default" || string(body) != "x" {
		t.Fatalf("public /metrics: %q via %q", body, resp.Header.Get(HeaderRoute))
	}
}

func TestNewWithDemoConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Config: cfg, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Intents: openLedger(t, filepath.Join(t.TempDir(), "intents.db"))})
	if err != nil {
		t.Fatal(err)
	}
	br := g.Breakers()
	if len(br) != len(cfg.Upstreams) {
		t.Fatalf("breakers %v, want one per upstream of %v", br, cfg.Upstreams)
	}
	for name := range cfg.Upstreams {
		if br[name] != "closed" {
			t.Fatalf("breakers %v: %s is not closed", br, name)
		}
	}
	st := g.RouteStats("products")
	if _, ok := st["new"]; !ok || len(st) != 2 {
		t.Fatalf("products stats %v", st)
	}
	if st := g.RouteStats("legacy-catalog"); len(st) != 1 {
		t.Fatalf("legacy-only route has stats for %v", st)
	}
	d := newStaticDecider(cfg)
	for i, r := range cfg.Routes {
		got := d.Decide(nil, i, "")
		// Without a decision engine only a route fully moved (canary 100)
		// goes to its new side.
		want := decide.Legacy
		if r.New != "" && r.Canary >= 100 {
			want = decide.New
		}
		if got.Backend != want {
			t.Errorf("built-in decider sends %s to %s", r.Name, got.Backend)
		}
	}
	if _, err := New(Options{Config: cfg, Registry: prometheus.NewRegistry(), Intents: openLedger(t, filepath.Join(t.TempDir(), "i2.db"))}); err != nil {
		t.Fatalf("a second gateway on a fresh registry: %v", err)
	}
}
