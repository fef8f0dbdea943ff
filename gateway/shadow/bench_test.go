package shadow

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
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
