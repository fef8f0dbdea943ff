package shadow

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

func TestBatchSizeFollowsTheTargetsLatency(t *testing.T) {
	t.Parallel()
	rs := &routeShadow{}
	rs.batch.Store(firstBatch)
	for range 6 { // 1, 2, 4, 8, 16, 32
		rs.adapt(int(rs.batch.Load()), time.Millisecond, false)
	}
	if got := rs.batch.Load(); got != maxBatch {
		t.Fatalf("after fast full batches the size is %d, want %d", got, maxBatch)
	}
	rs.adapt(1, time.Millisecond, false)
	if got := rs.batch.Load(); got != maxBatch {
		t.Fatalf("a fast single copy (little traffic) changed the size to %d", got)
	}
	rs.adapt(maxBatch, 100*time.Millisecond, false)
	if got := rs.batch.Load(); got != maxBatch/2 {
		t.Fatalf("after a slow batch of %d the size is %d, want %d", maxBatch, got, maxBatch/2)
	}
	rs.adapt(4, time.Millisecond, true)
	if got := rs.batch.Load(); got != 1 {
		t.Fatalf("after a failed batch the size is %d, want 1", got)
	}
	rs.adapt(1, time.Millisecond, false)
	if got := rs.batch.Load(); got != 2 {
		t.Fatalf("a fast single exchange grows the size back to 2, got %d", got)
	}
}

// panicMapping is a migration's Mapping with a bug.
type panicMapping struct{}

func (panicMapping) ToNew(*fasthttp.Request) bool    { panic("mapping bug") }
func (panicMapping) ToLegacy(*fasthttp.Request) bool { panic("mapping bug") }
func (panicMapping) Normalise(int, []byte) (int, []byte, error) {
	panic("mapping bug")
}

// A worker is a goroutine of its own: a panic while it prepares a batch
// would end the process. It must count the copies as errors instead and
// free their places.
func TestPanicInABatchIsCountedNotFatal(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{
		Upstreams: map[string]config.Upstream{"legacy": {URL: "http://legacy.internal:1", Kind: "legacy"}, "new": {URL: "http://new.internal:2", Kind: "new"}},
		Routes: []config.Route{{Name: "r", Path: "/*", Legacy: "legacy", New: "new",
			Shadow: &config.Shadow{Percent: 100}}},
		Shadow: config.ShadowStore{DB: filepath.Join(t.TempDir(), "s.db")},
	}
	cfg.ApplyDefaults()
	s, err := New(Options{Config: cfg, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Mappings: map[string]Mapping{"r": panicMapping{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Bounded: a copy whose place leaked would make Close wait forever.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	var req fasthttp.Request
	req.SetRequestURI("/shop/product.do?sku=1")
	var resp fasthttp.Response
	resp.SetBody([]byte("<product/>"))
	var ts []*Ticket
	for i := range 3 {
		tk := s.Begin(0, decide.Legacy, &req, []byte(fmt.Sprintf("req-%d", i)))
		if tk == nil {
			t.Fatal("copy not taken")
		}
		// What Complete copies, without handing the copy to a worker.
		tk.served, tk.pstatus = decide.Legacy, 200
		tk.pbody = append(tk.pbody[:0], resp.Body()...)
		ts = append(ts, tk)
	}
	s.runBatch(newBatch(), ts)
	r, err := s.Report("r")
	if err != nil {
		t.Fatal(err)
	}
	if r.Results["error"] != 3 || s.routes[0].pending.Load() != 0 {
		t.Fatalf("results %v, places held %d: want 3 errors and every place free", r.Results, s.routes[0].pending.Load())
	}
}
