package shadow_test

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// TestFastTargetComparesAlmostEveryCopy: with every read mirrored to a
// target that answers at once, at the default concurrency, and more clients
// in flight than the route has workers, fewer than 1 % of the copies are
// dropped and the rest are compared. A copy's place is taken before the
// primary is proxied, so a pool whose places were held for the whole
// primary exchange drops most copies here (32 clients, 16 places).
func TestFastTargetComparesAlmostEveryCopy(t *testing.T) {
	t.Parallel()
	products := testProducts()
	leg := catalogServer(t, products, nil)
	target := catalogServer(t, products, nil)
	cfg := baseConfig(t, leg.URL, target.URL, &config.Shadow{Percent: 100, Concurrency: 16}, nil)
	e := startGateway(t, cfg, nil)

	const clients, perClient = 32, 100
	const n = clients * perClient
	var bad atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				resp, err := e.client.Get(e.url + "/api/v1/products/B1")
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d primary requests failed", bad.Load(), n)
	}
	r := e.settled(t, "products", n)
	t.Logf("results %v, compared %d", r.Results, r.Compared)
	if d := r.Results["dropped"]; d*100 >= n {
		t.Errorf("%d of %d copies dropped (%.1f %%), want under 1 %%", d, n, float64(d)*100/n)
	}
	if r.Compared+r.Results["dropped"] != n || r.Results["diff"] != 0 {
		t.Errorf("results %v: want every copy not dropped compared, and no difference (identical sides)", r.Results)
	}
	if got := target.marked.Load(); got != int64(r.Compared) {
		t.Errorf("the target received %d marked copies, %d were compared", got, r.Compared)
	}
}

// TestSlowTargetIsNotPipelinedIntoTimeouts: an HTTP/1.1 server answers a
// connection's pipelined requests one after the other, so a batch of 32
// copies to a target taking 60ms each would need 1.9s, past the 1s
// timeout. The batch size adapts to the target's latency: every copy is
// compared, none fails.
func TestSlowTargetIsNotPipelinedIntoTimeouts(t *testing.T) {
	t.Parallel()
	products := testProducts()
	leg := catalogServer(t, products, nil)
	target := catalogServer(t, products, func(p product) any {
		time.Sleep(60 * time.Millisecond) // the slow target
		return p
	})
	cfg := baseConfig(t, leg.URL, target.URL, &config.Shadow{Percent: 100, Concurrency: 16, Timeout: time.Second}, nil)
	e := startGateway(t, cfg, nil)

	const clients, perClient = 16, 6
	const n = clients * perClient
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				resp, err := e.client.Get(e.url + "/api/v1/products/B2")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	r := e.settled(t, "products", n)
	t.Logf("results %v", r.Results)
	if r.Results["error"] != 0 || r.Compared != n {
		t.Fatalf("results %v: want all %d copies compared and none failed", r.Results, n)
	}
}
