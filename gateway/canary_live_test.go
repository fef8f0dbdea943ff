package gateway

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
)

// TestCanaryChangesUnderLoadFailNoRequest drives the real decision engine
// through the real proxy while an operator ramps the canary up and down:
// every request succeeds, both sides serve, and each answer comes from the
// side the response header names.
func TestCanaryChangesUnderLoadFailNoRequest(t *testing.T) {
	t.Parallel()
	legacy := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("legacy")) })
	newSide := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("new")) })
	cfg := testConfig(t, map[string]string{"legacy": legacy.URL, "catalog": newSide.URL}, []config.Route{
		{Name: "products", Path: "/api/v1/products/*", New: "catalog"},
	}, nil)
	engine, err := decide.NewEngine(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	g := start(t, cfg, func(o *Options) { o.Decider = engine })

	const workers, perWorker = 6, 150
	var failed, mismatched atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	rampDone := make(chan struct{})
	go func() {
		defer close(rampDone)
		for step := 0; ; step++ {
			select {
			case <-stop:
				return
			default:
			}
			pct := float64((step * 10) % 110) // 0, 10, ..., 100, 0, ...
			if _, err := engine.SetCanary("products", pct); err != nil {
				t.Errorf("SetCanary(%v): %v", pct, err)
				return
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				req, _ := http.NewRequest("GET", g.url+"/api/v1/products/ART-1", nil)
				req.Header.Set("X-User-Id", fmt.Sprintf("user-%d-%d", w, i))
				resp, err := g.clients.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					failed.Add(1)
					continue
				}
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				if string(body) != resp.Header.Get(HeaderBackend) {
					mismatched.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-rampDone
	if f, m := failed.Load(), mismatched.Load(); f != 0 || m != 0 {
		t.Fatalf("%d failed requests and %d answers from another side than the header names, of %d", f, m, workers*perWorker)
	}
	if legacy.hits.Load() == 0 || newSide.hits.Load() == 0 {
		t.Fatalf("both sides should have served during the ramp: legacy %d, new %d", legacy.hits.Load(), newSide.hits.Load())
	}
}
