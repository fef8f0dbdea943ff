package decide

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/ficus-gw/ficus/config"
)

const testOverrideToken = "tester-token-0123456789"

// testConfig is a small gateway config: "cart" and "orders" share a cohort,
// "catalog" has its own, "legacyonly" has no new side.
func testConfig(mutate ...func(*config.Config)) *config.Config {
	cfg := &config.Config{
		Upstreams: map[string]config.Upstream{
			"legacy": {URL: "http://127.0.0.1:1"}, "svc": {URL: "http://127.0.0.1:2"},
		},
		Routing: config.Routing{
			UserKey: config.UserKey{Header: "X-User-Id", Cookie: "uid", JWTSub: true},
			Override: config.Override{
				Tokens:          []config.Token{{Name: "tester", Value: testOverrideToken}},
				TrustedNetworks: []string{"10.1.0.0/16"},
			},
			ContextHeaders: []string{"X-Tenant"},
		},
		Routes: []config.Route{
			{Name: "catalog", Path: "/catalog/*", New: "svc", Canary: 25},
			{Name: "cart", Path: "/cart/*", New: "svc", Canary: 30, Cohort: "checkout"},
			{Name: "orders", Path: "/orders/*", New: "svc", Canary: 30, Cohort: "checkout"},
			{Name: "legacyonly", Path: "/old/*"},
			{Name: "beta", Path: "/beta/*", New: "svc", Flag: "beta-route"},
		},
	}
	for _, m := range mutate {
		m(cfg)
	}
	cfg.ApplyDefaults()
	return cfg
}

func routeIndex(t testing.TB, cfg *config.Config, name string) int {
	t.Helper()
	for i, r := range cfg.Routes {
		if r.Name == name {
			return i
		}
	}
	if cfg.DefaultRoute.Name == name {
		return len(cfg.Routes)
	}
	t.Fatalf("no route %q", name)
	return -1
}

func newTestEngine(t testing.TB, cfg *config.Config, p openfeature.FeatureProvider) (*Engine, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := NewEngine(cfg, p, reg, nil)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, reg
}

// request describes one inbound request for decide.
type request struct {
	headers map[string]string
	cookie  [2]string
	remote  string // ip; default 192.0.2.1
	method  string
}

// withCtx runs fn with a real *fiber.Ctx for req, released afterwards.
func withCtx(app *fiber.App, req request, fn func(c *fiber.Ctx)) {
	fctx := &fasthttp.RequestCtx{}
	if req.method != "" {
		fctx.Request.Header.SetMethod(req.method)
	}
	fctx.Request.SetRequestURI("/x")
	for k, v := range req.headers {
		fctx.Request.Header.Set(k, v)
	}
	if req.cookie[0] != "" {
		fctx.Request.Header.SetCookie(req.cookie[0], req.cookie[1])
	}
	ip := req.remote
	if ip == "" {
		ip = "192.0.2.1"
	}
	fctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP(ip), Port: 40000})
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	fn(c)
}

func decideOne(e *Engine, app *fiber.App, route int, reqID string, req request) Decision {
	var d Decision
	withCtx(app, req, func(c *fiber.Ctx) { d = e.Decide(c, route, reqID) })
	return d
}

func user(id string) request { return request{headers: map[string]string{"X-User-Id": id}} }

// waitFlush waits (bounded) until the engine has dropped its flag cache
// more than since times, i.e. it has handled a provider event that came
// after since was read.
func waitFlush(t *testing.T, e *Engine, since uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for e.flushes.Load() <= since {
		select {
		case <-e.flushed:
		case <-ctx.Done():
			t.Fatal("no PROVIDER_CONFIGURATION_CHANGED handled within 10s")
		}
	}
}

// fileProvider is flagd's in-process file provider on path, as the
// gateway's edge builds it.
func fileProvider(tb testing.TB, path string) openfeature.FeatureProvider {
	tb.Helper()
	p, err := flagd.NewProvider(flagd.WithFileResolver(), flagd.WithOfflineFilePath(path))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
