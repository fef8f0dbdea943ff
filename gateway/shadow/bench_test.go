package shadow

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// BenchmarkBegin measures what shadowing adds to the primary path before
// the request is proxied: not sampled, and sampled but dropped (queue full).
func BenchmarkBegin(b *testing.B) {
	for _, tc := range []struct {
		name    string
		percent float64
	}{{"not sampled", 0.01}, {"queue full", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := &config.Config{
				Upstreams: map[string]config.Upstream{"legacy": {URL: "http://127.0.0.1:1", Kind: "acl"}, "new": {URL: "http://127.0.0.1:2", Kind: "new"}},
				Routes: []config.Route{{Name: "r", Path: "/*", Legacy: "legacy", New: "new",
					Shadow: &config.Shadow{Percent: tc.percent, Concurrency: 1}}},
				Shadow: config.ShadowStore{DB: filepath.Join(b.TempDir(), "s.db")},
			}
			cfg.ApplyDefaults()
			s, err := New(Options{Config: cfg, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.store.close() })
			s.routes[0].pending.Store(s.routes[0].limit) // the queue is full
			var req fasthttp.Request
			req.SetRequestURI("/api/v1/products/A1")
			ids := make([][]byte, 1024)
			for i := range ids {
				ids[i] = []byte(fmt.Sprintf("req-%016d", i))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if t := s.Begin(0, decide.Legacy, &req, ids[i%len(ids)]); t != nil {
					b.Fatal("a request got a place in a full queue")
				}
			}
		})
	}
}

// BenchmarkCopy is one mirrored read end to end, in process: Begin and
// Complete on the caller (the primary path's share), then the worker's
// batch to an in-memory target that answers the primary's bytes, and the
// comparison (a match). It reports what a copy costs whatever the machine's
// load: CPU and allocations per copy, and dropped/op, which must stay 0 (the
// loop waits when the queue is nearly full, as a primary would not).
func BenchmarkCopy(b *testing.B) {
	body := []byte(`{"sku":"sku-1","name":"Teapot","category":"kitchen","price":{"amountMinor":1999,"currency":"EUR"},"updatedAt":"2026-01-01T00:00:00Z"}`)
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.SetContentType("application/json")
		c.SetBody(body)
	}}
	go srv.Serve(ln) //nolint:errcheck // ends with ln.Close
	defer ln.Close()
	cfg := &config.Config{
		Upstreams: map[string]config.Upstream{"legacy": {URL: "http://legacy.internal:1", Kind: "acl"}, "new": {URL: "http://new.internal:2", Kind: "new"}},
		Routes: []config.Route{{Name: "r", Path: "/*", Legacy: "legacy", New: "new",
			Shadow: &config.Shadow{Percent: 100}}},
		Shadow: config.ShadowStore{DB: filepath.Join(b.TempDir(), "s.db")},
	}
	cfg.ApplyDefaults()
	s, err := New(Options{Config: cfg, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dial: func(string, string) (net.Conn, error) { return ln.Dial() }})
	if err != nil {
		b.Fatal(err)
	}
	rs := s.routes[0]
	var req fasthttp.Request
	req.SetRequestURI("/api/v1/products/sku-1")
	req.Header.SetHost("shop.example")
	req.Header.Set("X-User-Id", "user-4711")
	var resp fasthttp.Response
	resp.Header.SetContentType("application/json")
	resp.SetBody(body)
	ids := make([][]byte, 1024)
	for i := range ids {
		ids[i] = []byte(fmt.Sprintf("req-%016d", i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for rs.pending.Load() > rs.limit/2 {
			runtime.Gosched() // let the workers catch up: dropping is not what this measures
		}
		t := s.Begin(0, decide.Legacy, &req, ids[i%len(ids)])
		s.Complete(t, decide.Legacy, &resp, false)
	}
	for rs.pending.Load() > 0 {
		runtime.Gosched()
	}
	b.StopTimer()
	r, err := s.Report("r")
	if err != nil {
		b.Fatal(err)
	}
	if r.Results["diff"]+r.Results["error"]+r.Results["skipped"] > 0 {
		b.Fatalf("results %v: every copy must be a match", r.Results)
	}
	b.ReportMetric(float64(r.Results["dropped"])/float64(b.N), "dropped/op")
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
