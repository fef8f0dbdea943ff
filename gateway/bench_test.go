package gateway

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// BenchmarkProxyPath drives the whole public handler (normalise, route,
// decide, forward through the upstream client, relay) against an in-memory
// upstream, without the client-side network.
func BenchmarkProxyPath(b *testing.B) {
	for _, bc := range []struct {
		name, path string
		shadow     *config.Shadow
		buffer     bool
	}{
		{"legacy", "/shop/catalog.do?page=2", nil, false},
		{"new", "/api/v1/products/sku-1?fields=name", nil, false},
		// The same route with bufferResponses: no stream bookkeeping.
		{"new buffered", "/api/v1/products/sku-1?fields=name", nil, true},
		// Every request sampled, the only shadow slot held by a target that
		// never answers: the steady state of a slow shadow target.
		{"new shadowed to a hanging target", "/api/v1/products/sku-1?fields=name",
			&config.Shadow{Percent: 100, Target: "slow", Concurrency: 1, Timeout: time.Hour}, false},
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
			cfg.ApplyDefaults()
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			g, err := New(Options{
				Config: cfg, Registry: prometheus.NewRegistry(),
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

// drive serves path through h until the benchmark ends, checking every
// answer.
func drive(b *testing.B, h fasthttp.RequestHandler, path string, body []byte) {
	var req fasthttp.Request
	req.SetRequestURI(path)
	req.Header.SetHost("shop.example")
	req.Header.Set("X-Request-Id", "bench-request-1")
	req.Header.Set("User-Agent", "bench")
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 40000}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, remote, nil)
	b.ReportAllocs()
	for b.Loop() {
		// A fresh copy of the request each time, in the one context (Init
		// allocates, which would hide whether the handler does).
		req.CopyTo(&ctx.Request)
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) != len(body) {
			b.Fatalf("status %d body %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
