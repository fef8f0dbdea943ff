package decide

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/valyala/fasthttp"

	"github.com/ficus-gw/ficus/config"
)

// BenchmarkDecide measures the hot path. The budget is ≤ 2 µs and 0
// allocations per call; "full" is the worst regular case: an override
// header that must be checked and rejected, a flag answered from the cache
// that falls through, then the sticky canary.
func BenchmarkDecide(b *testing.B) {
	jwt := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"idp","sub":"user-4711","aud":["a","b"],"exp":1900000000}`)) + "."
	cases := []struct {
		name    string
		route   string
		headers map[string]string
	}{
		{"canary", "catalog", map[string]string{"X-User-Id": "user-4711"}},
		{"full", "beta", map[string]string{"X-User-Id": "user-4711", "X-Ficus-Backend": "new", "X-Tenant": "acme"}},
		{"override-token", "beta", map[string]string{"X-User-Id": "user-4711", "X-Ficus-Backend": "new", "X-Ficus-Override-Token": testOverrideToken}},
		{"jwt-sub", "beta", map[string]string{"Authorization": "Bearer " + jwt}},
		{"no-user-key", "catalog", nil},
	}
	cfg := testConfig(func(c *config.Config) { c.Routes[4].Canary = 40 })
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"beta-route": {Key: "beta-route", State: memprovider.Enabled, DefaultVariant: "off",
			Variants: map[string]any{"off": "off", "new": "new"}},
	})
	e, _ := newTestEngine(b, cfg, p)
	app := fiber.New()
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			fctx := &fasthttp.RequestCtx{}
			fctx.Request.SetRequestURI("/x")
			for k, v := range tc.headers {
				fctx.Request.Header.Set(k, v)
			}
			fctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1})
			c := app.AcquireCtx(fctx)
			defer app.ReleaseCtx(c)
			route := routeIndex(b, cfg, tc.route)
			e.Decide(c, route, "req-1") // warm the flag cache
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Decide(c, route, "req-1")
			}
		})
	}
}

// BenchmarkFlagdMissVsHit shows what the answer cache saves: a miss pays a
// full flagd evaluation (fractional split), a hit pays a hash and a load.
func BenchmarkFlagdMissVsHit(b *testing.B) {
	path := filepath.Join(b.TempDir(), "flags.json")
	flags := `{"flags":{"beta-route":{"state":"ENABLED","variants":{"legacy":"legacy","new":"new"},"defaultVariant":"legacy",
		"targeting":{"fractional":[["legacy",50],["new",50]]}}}}`
	if err := os.WriteFile(path, []byte(flags), 0o644); err != nil {
		b.Fatal(err)
	}
	p := fileProvider(b, path)
	cfg := testConfig()
	e, _ := newTestEngine(b, cfg, p)
	app := fiber.New()
	route := routeIndex(b, cfg, "beta")
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.SetRequestURI("/x")
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		key := make([]byte, 0, 32)
		i := 0
		for b.Loop() {
			i++
			key = strconv.AppendInt(append(key[:0], "user-"...), int64(i), 10)
			fctx.Request.Header.SetBytesV("X-User-Id", key)
			e.cache.Load().slots[e.fingerprint(c, &e.routes[route], key)&e.cache.Load().mask].Store(0)
			e.Decide(c, route, "req-1")
		}
	})
	b.Run("hit", func(b *testing.B) {
		fctx.Request.Header.Set("X-User-Id", "user-1")
		e.Decide(c, route, "req-1")
		b.ReportAllocs()
		for b.Loop() {
			e.Decide(c, route, "req-1")
		}
	})
}
