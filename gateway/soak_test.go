package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/internal/faultproxy"
)

// TestSoak drives a gateway for FICUS_SOAK (a duration, e.g. 2m; at most
// 15m) with a mix of traffic that exercises every path that holds
// resources: proxied reads and writes, streamed bodies, refusals (404 fence,
// 405, 413 with its lingering close, 400), new-side failures with fallback
// through a fault proxy that keeps resetting connections, and upstream
// connections dropped under the pool. It samples the process's RSS and
// goroutines and fails when either grows: goroutines must come back to
// their baseline once the load stops, and RSS in the last quarter of the
// run must not exceed the first quarter after warm-up by more than 50% and
// 32 MiB. `make soak` runs it; `make test` skips it.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("FICUS_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set FICUS_SOAK to a duration (make soak) to run the soak test")
	}
	d = min(d, 15*time.Minute)
	big := strings.Repeat("z", 256<<10)
	legacy := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/shop/export.do" {
			io.WriteString(w, big) // streamed: no Content-Length
			return
		}
		io.WriteString(w, `<ok/>`)
	})
	fresh := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
	fp, err := faultproxy.New(strings.TrimPrefix(fresh.URL, "http://"), 7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	routes := []config.Route{
		{Name: "admin", Path: "/shop/admin/*", Deny: &config.Deny{}},
		{Name: "order", Path: "/shop/placeOrder.do", Methods: []string{"POST"}},
		{Name: "shop", Path: "/shop/*"},
		{Name: "products", Path: "/api/v1/products/*", New: "catalog", Canary: 100, BufferResponses: true},
	}
	cfg := testConfig(t, map[string]string{"legacy": legacy.URL, "catalog": fp.URL()}, routes, func(c *config.Config) {
		c.Limits.MaxRequestBodyBytes = 64 << 10
		u := c.Upstreams["catalog"]
		u.Timeout = 500 * time.Millisecond
		u.Breaker = config.Breaker{Window: 2 * time.Second, MinRequests: 20, FailureRatio: 0.5, ConsecutiveFailures: 5, OpenFor: 500 * time.Millisecond, HalfOpenProbes: 2}
		c.Upstreams["catalog"] = u
	})
	r := start(t, cfg, nil)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	requests := []func() (*http.Response, error){
		func() (*http.Response, error) { return client.Get(r.url + "/shop/catalog.do") },
		func() (*http.Response, error) { return client.Get(r.url + "/shop/export.do") },
		func() (*http.Response, error) { return client.Get(r.url + "/api/v1/products/A1") },
		func() (*http.Response, error) {
			return client.Post(r.url+"/shop/placeOrder.do", "application/x-www-form-urlencoded", strings.NewReader("sku=A1&qty=1"))
		},
		func() (*http.Response, error) { return client.Get(r.url + "/shop/admin/faults") },
		func() (*http.Response, error) { return client.Get(r.url + "/shop/placeOrder.do") },
		func() (*http.Response, error) {
			return client.Post(r.url+"/shop/upload", "text/plain", strings.NewReader(strings.Repeat("u", 128<<10)))
		},
		func() (*http.Response, error) { return client.Get(r.url + "/shop/%2f..") },
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				resp, err := requests[i%len(requests)]()
				sent.Add(1)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	// The fault side: the new upstream alternates between healthy and
	// resetting, and pooled connections are dropped now and then.
	wg.Add(1)
	go func() {
		defer wg.Done()
		faults := []faultproxy.Fault{{}, {Kind: faultproxy.Reset, Rate: 0.5}, {}, {Kind: faultproxy.Latency, Latency: 700 * time.Millisecond}}
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				fp.Set(faultproxy.Fault{})
				return
			case <-tick.C:
				fp.Set(faults[i%len(faults)])
				legacy.CloseClientConnections()
			}
		}
	}()

	type sample struct {
		rss        int64
		goroutines int
	}
	var samples []sample
	every := max(d/40, time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	warm := time.Now().Add(d / 5)
sampling:
	for {
		select {
		case <-ctx.Done():
			break sampling
		case <-tick.C:
			if time.Now().Before(warm) {
				continue
			}
			samples = append(samples, sample{rss: rssBytes(t), goroutines: runtime.NumGoroutine()})
		}
	}
	wg.Wait()
	client.CloseIdleConnections()
	t.Logf("%d requests in %s, %d samples", sent.Load(), d, len(samples))

	// Goroutines come back once the load is gone: pooled connections are
	// dropped here, lingering closes end within 3 s, and the server's idle
	// workers within fasthttp's 10 s idle worker time.
	for _, up := range r.gw.gen.Load().ups {
		up.CloseIdle()
	}
	legacy.CloseClientConnections()
	fresh.CloseClientConnections()
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > baseGoroutines+10 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d at rest after the soak, %d before\n%s", runtime.NumGoroutine(), baseGoroutines, buf[:n])
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	if len(samples) < 8 {
		t.Fatalf("only %d samples: run the soak longer", len(samples))
	}
	q := len(samples) / 4
	median := func(s []sample) int64 {
		v := make([]int64, len(s))
		for i := range s {
			v[i] = s[i].rss
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	first, last := median(samples[:q]), median(samples[len(samples)-q:])
	t.Logf("RSS first quarter %d MiB, last quarter %d MiB", first>>20, last>>20)
	if last > first+first/2 && last-first > 32<<20 {
		t.Fatalf("RSS grew from %d MiB to %d MiB during the soak", first>>20, last>>20)
	}
	peakG := 0
	for _, s := range samples {
		peakG = max(peakG, s.goroutines)
	}
	if firstG, lastG := samples[q].goroutines, samples[len(samples)-1].goroutines; lastG > 2*firstG+50 {
		t.Fatalf("goroutines grew under steady load: %d -> %d (peak %d)", firstG, lastG, peakG)
	}
}

// rssBytes reads the resident set size of this process (Linux).
func rssBytes(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status: the soak test samples RSS on Linux only")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal(fmt.Errorf("VmRSS not found"))
	return 0
}
