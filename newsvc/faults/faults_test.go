package faults

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/gofiber/fiber/v2"
)

// app is a service shaped like the new ones: apierr's ErrorHandler, the
// injector, one route.
func app(in *Injector) *fiber.App {
	a := fiber.New(fiber.Config{ErrorHandler: apierr.Handler(nil)})
	a.Use(in.Middleware())
	a.Get("/api/v1/products/*", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"sku": "ART-1"}) })
	a.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return a
}

func get(t *testing.T, a *fiber.App, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := a.Test(httptest.NewRequest(http.MethodGet, path, nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestNoFaultPassesThrough(t *testing.T) {
	t.Parallel()
	a := app(New(nil, nil))
	if code, body, _ := get(t, a, "/api/v1/products/ART-1"); code != 200 || !strings.Contains(body, "ART-1") {
		t.Fatalf("%d %s", code, body)
	}
}

// TestErrorRateFailsThatShare: 5% of 4,000 requests fail with the service's
// structured 500 (seeded draws; the bound is 4 standard deviations).
func TestErrorRateFailsThatShare(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 1))
	in := New(r.Float64, nil)
	if err := in.Set(Fault{ErrorRate: 0.05, PathPrefix: "/api/v1/products"}); err != nil {
		t.Fatal(err)
	}
	a := app(in)
	failed := 0
	const n = 4000
	for range n {
		code, body, _ := get(t, a, "/api/v1/products/ART-1")
		if code == 500 {
			failed++
			var e apierr.Error
			if json.Unmarshal([]byte(body), &e) != nil || e.Code != apierr.CodeInternal {
				t.Fatalf("injected error body %s, want an apierr INTERNAL body", body)
			}
		}
	}
	if got := float64(failed) / n; got < 0.036 || got > 0.064 {
		t.Fatalf("%.4f of requests failed, want about 0.05", got)
	}
	// Outside the prefix nothing fails.
	for range 200 {
		if code, _, _ := get(t, a, "/healthz"); code != 200 {
			t.Fatalf("/healthz answered %d under a products-only fault", code)
		}
	}
}

func TestLatencyIsAdded(t *testing.T) {
	t.Parallel()
	in := New(nil, nil)
	if err := in.Set(Fault{LatencyMS: 80}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, _ := get(t, app(in), "/api/v1/products/ART-1")
	if d := time.Since(start); code != 200 || d < 80*time.Millisecond {
		t.Fatalf("answered %d after %v, want 200 after >= 80ms", code, d)
	}
}

func TestOutage(t *testing.T) {
	t.Parallel()
	in := New(nil, nil)
	if err := in.Set(Fault{Outage: true}); err != nil {
		t.Fatal(err)
	}
	code, body, h := get(t, app(in), "/api/v1/products/ART-1")
	if code != 503 || h.Get("Retry-After") != "30" || !strings.Contains(body, apierr.CodeDependency) {
		t.Fatalf("%d %v %s, want 503 DEPENDENCY_UNAVAILABLE with Retry-After", code, h, body)
	}
}

// TestAdminOverLoopback drives the admin handler on a real loopback
// listener as a drill would with curl.
func TestAdminOverLoopback(t *testing.T) {
	t.Parallel()
	in := New(nil, nil)
	srv, err := NewAdminServer("127.0.0.1:0", in)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	base := "http://" + ln.Addr().String() + AdminPath
	c := &http.Client{Timeout: 5 * time.Second}
	do := func(method, body, ctype string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do(http.MethodPut, `{"error_rate": 0.05, "path_prefix": "/api/v1/products"}`, "application/json"); code != 200 || !strings.Contains(body, `"error_rate":0.05`) {
		t.Fatalf("set: %d %s", code, body)
	}
	if in.Fault().ErrorRate != 0.05 {
		t.Fatalf("fault not applied: %+v", in.Fault())
	}
	for _, tc := range []struct{ body, ctype, want string }{
		{`{"error_rate": 5}`, "application/json", "error_rate"},
		{`{"latency_ms": -1}`, "application/json", "latency_ms"},
		{`{"path_prefix": "api"}`, "application/json", "path_prefix"},
		{`{"errorRate": 0.5}`, "application/json", "unknown field"},
		{`error_rate=0.5`, "application/x-www-form-urlencoded", "UNSUPPORTED_MEDIA_TYPE"},
	} {
		code, body := do(http.MethodPost, tc.body, tc.ctype)
		if code/100 != 4 || !strings.Contains(body, tc.want) || !strings.Contains(body, `"code"`) {
			t.Errorf("%s: %d %s, want a structured 4xx naming %s", tc.body, code, body, tc.want)
		}
	}
	if in.Fault().ErrorRate != 0.05 {
		t.Fatalf("a refused fault changed the active one: %+v", in.Fault())
	}
	if code, body := do(http.MethodDelete, "", ""); code != 200 || in.Fault() != (Fault{}) {
		t.Fatalf("clear: %d %s %+v", code, body, in.Fault())
	}
}

func TestAdminServerIsLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:9999", ":9999", "10.1.2.3:9999", "localhost:9999", "example.com:1"} {
		if _, err := NewAdminServer(addr, New(nil, nil)); err == nil {
			t.Errorf("NewAdminServer(%q) accepted a non-loopback address", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		if _, err := NewAdminServer(addr, New(nil, nil)); err != nil {
			t.Errorf("NewAdminServer(%q): %v", addr, err)
		}
	}
	if err := New(nil, nil).Set(Fault{ErrorRate: 2}); err == nil {
		t.Error("Set accepted error_rate 2")
	}
}
