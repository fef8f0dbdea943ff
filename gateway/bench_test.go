package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// BenchmarkProxyPath drives the whole public handler (normalise, route,
// decide, forward through the upstream client, relay) against an in-memory
// upstream, without the client-side network.
//
// The cases named "static" decide with the gateway's static decider (the
// route's configured canary, nothing else); the "engine" cases decide as
// the product does, with the decision engine (decide.NewEngine) over an
// OpenFeature provider: the route's flag is evaluated per user (answers
// cached), then the sticky canary buckets the user; the user key comes
// from X-User-Id, 1000 users in turn, as in bench/wrk.lua.
func BenchmarkProxyPath(b *testing.B) {
	for _, bc := range []struct {
		name, path string
		shadow     *config.Shadow
		buffer     bool
		engine     bool
	}{
		{"legacy", "/shop/catalog.do?page=2", nil, false, false},
		{"new static", "/api/v1/products/sku-1?fields=name", nil, false, false},
		// The same route with bufferResponses: no stream bookkeeping.
		{"new static buffered", "/api/v1/products/sku-1?fields=name", nil, true, false},
		// The benchmark run's route: flag + 50% sticky canary, buffered.
		{"flag and canary engine buffered", "/api/v1/products/sku-1?fields=name", nil, true, true},
		{"flag and canary engine streamed", "/api/v1/products/sku-1?fields=name", nil, false, true},
		// Every request sampled, the shadow queue held by a target that
		// never answers: the steady state of a slow shadow target.
		{"new shadowed to a hanging target", "/api/v1/products/sku-1?fields=name",
			&config.Shadow{Percent: 100, Target: "slow", Concurrency: 1, Timeout: time.Hour}, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ln := fasthttputil.NewInmemoryListener()
			body := []byte(`{"sku":"sku-1","name":"Teapot","price":{"amount":1999,"currency":"EUR"}}`)
			srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
				c.SetContentType("application/json")
				c.SetBody(body)
			}}
			go srv.Serve(ln) //nolint:errcheck // ends with ln.Close
			defer ln.Close()
			hang := fasthttputil.NewInmemoryListener() // accepts, never answers
			defer hang.Close()
			cfg := &config.Config{
				Listen: "127.0.0.1:18080", Admin: config.Admin{Listen: "127.0.0.1:18090"},
				Upstreams: map[string]config.Upstream{
					"legacy":  {URL: "http://legacy.internal:8081"},
					"catalog": {URL: "http://catalog.internal:8082", Kind: "new"},
					"slow":    {URL: "http://slow.internal:8084", Kind: "new"},
				},
				Routes: []config.Route{
					{Name: "legacy-catalog", Path: "/shop/catalog.do", Methods: []string{"GET", "HEAD"}},
					{Name: "products", Path: "/api/v1/products/*", New: "catalog", Canary: 100, Methods: []string{"GET"}, Shadow: bc.shadow, BufferResponses: bc.buffer},
				},
				Shadow: config.ShadowStore{DB: filepath.Join(b.TempDir(), "shadow.db")},
			}
			if bc.engine {
				r := &cfg.Routes[1]
				r.Canary, r.Flag = 50, "bench-new-catalog"
				// The configuration names a flag source, as cmd/ficus needs;
				// the engine below is handed an in-memory provider instead.
				cfg.Flags.File = filepath.Join(b.TempDir(), "flags.json")
			}
			cfg.ApplyDefaults()
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			var decider Decider
			if bc.engine {
				decider = benchEngine(b, cfg, reg)
			}
			g, err := New(Options{
				Config: cfg, Registry: reg, Decider: decider,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Dial: func(up, _ string) (net.Conn, error) {
					if up == "slow" {
						return hang.Dial()
					}
					return ln.Dial()
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			drive(b, g.app.Handler(), bc.path, body)
		})
	}
	// The baseline of the same run: Fiber's own proxy.Do through one
	// fasthttp.HostClient to the same kind of in-memory upstream, nothing
	// else. ProxyPath/new ÷ this is what Ficus's features cost per request.
	b.Run("bare Fiber proxy", func(b *testing.B) {
		ln := fasthttputil.NewInmemoryListener()
		body := []byte(`{"sku":"sku-1","name":"Teapot","price":{"amount":1999,"currency":"EUR"}}`)
		srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
			c.SetContentType("application/json")
			c.SetBody(body)
		}}
		go srv.Serve(ln) //nolint:errcheck // ends with ln.Close
		defer ln.Close()
		hc := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() },
			ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.All("/*", func(c *fiber.Ctx) error {
			return proxy.Do(c, "http://catalog.internal:8082"+c.OriginalURL(), hc)
		})
		drive(b, app.Handler(), "/api/v1/products/sku-1?fields=name", body)
	})
}

// benchEngine is the decision engine as cmd/ficus builds it, over an
// in-memory OpenFeature provider holding the benchmark run's flag: its
// default variant "canary" is not a backend, so after the flag the sticky
// canary decides, for every user but the two beta users forced to new.
func benchEngine(b *testing.B, cfg *config.Config, reg *prometheus.Registry) *decide.Engine {
	b.Helper()
	beta := func(_ memprovider.InMemoryFlag, ec openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if k, _ := ec[openfeature.TargetingKey].(string); k == "bench-user-1" || k == "bench-user-2" {
			return "new", openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "new"}
		}
		return "canary", openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason, Variant: "canary"}
	}
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"bench-new-catalog": {Key: "bench-new-catalog", State: memprovider.Enabled, DefaultVariant: "canary",
			Variants: map[string]any{"canary": "canary", "new": "new", "legacy": "legacy"}, ContextEvaluator: &beta},
	})
	e, err := decide.NewEngine(cfg, p, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	return e
}

// benchUsers is how many X-User-Id values drive rotates through.
const benchUsers = 1000

// drive serves path through h until the benchmark ends, checking every
// answer. Requests carry X-User-Id bench-user-1..benchUsers in turn.
func drive(b *testing.B, h fasthttp.RequestHandler, path string, body []byte) {
	reqs := make([]fasthttp.Request, benchUsers)
	for i := range reqs {
		req := &reqs[i]
		req.SetRequestURI(path)
		req.Header.SetHost("shop.example")
		req.Header.Set("X-Request-Id", fmt.Sprintf("bench-request-%d", i))
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("X-User-Id", fmt.Sprintf("bench-user-%d", i+1))
	}
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 40000}
	var ctx fasthttp.RequestCtx
	ctx.Init(&reqs[0], remote, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A fresh copy of the request each time, in the one context (Init
		// allocates, which would hide whether the handler does).
		reqs[i%benchUsers].CopyTo(&ctx.Request)
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) != len(body) {
			b.Fatalf("status %d body %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
