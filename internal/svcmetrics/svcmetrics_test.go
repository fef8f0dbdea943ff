package svcmetrics

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/internal/metricstest"
)

// TestFiberMiddleware serves a small app on loopback and scrapes it: route
// patterns, never raw paths, become handler labels; unknown paths and
// methods collapse into one series each.
func TestFiberMiddleware(t *testing.T) {
	t.Parallel()
	reg := NewRegistry("v1.2.3")
	h, err := NewHTTP(reg)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(h.Fiber())
	Mount(app, reg)
	app.Get("/items/:id", func(c *fiber.Ctx) error {
		if c.Params("id") == "boom" {
			return fiber.NewError(fiber.StatusServiceUnavailable, "down")
		}
		return c.SendString("ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, r := range []struct{ method, path string }{
		{"GET", "/items/1"}, {"GET", "/items/2"}, {"GET", "/items/boom"},
		{"GET", "/random/a"}, {"GET", "/random/b"}, {"TRACE", "/items/3"},
	} {
		req, _ := http.NewRequest(r.method, base+r.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	fams := metricstest.Scrape(t, base+"/metrics")
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"handler", "/items/:id", "method", "GET", "code", "200"}, 2},
		{[]string{"handler", "/items/:id", "method", "GET", "code", "503"}, 1},
		{[]string{"handler", Unmatched, "method", "GET", "code", "404"}, 2},
		{[]string{"handler", Unmatched, "method", "other"}, 1},
	} {
		if got, _ := metricstest.Series(fams, MetricRequests, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", MetricRequests, c.labels, got, c.want)
		}
	}
	for _, m := range fams[MetricRequests].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "random") {
				t.Errorf("a raw path became a label: %v", m)
			}
		}
	}
	if got, ok := metricstest.Series(fams, MetricBuildInfo, "version", "v1.2.3", "goversion", runtime.Version()); !ok || got != 1 {
		t.Errorf("%s = %v (present %v)", MetricBuildInfo, got, ok)
	}
}

func TestReadBuild(t *testing.T) {
	t.Parallel()
	if b := ReadBuild(""); b.Version != "dev" || b.GoVersion != runtime.Version() || b.Revision == "" {
		t.Fatalf("ReadBuild(\"\") = %+v", b)
	}
	if b := ReadBuild("v9"); b.Version != "v9" {
		t.Fatalf("ReadBuild(v9) = %+v", b)
	}
}
