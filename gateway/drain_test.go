package gateway

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

func TestDrainFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		w.Write([]byte("done"))
	})
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, func(c *config.Config) {
		c.Limits.ShutdownTimeout = 20 * time.Second
	}), nil)

	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := r.clients.Get(r.url + "/slow")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	if got := r.counter(t, MetricInFlight); got != 1 {
		t.Fatalf("%s = %v while one request waits on the upstream", MetricInFlight, got)
	}
	r.cancel() // SIGTERM

	// /readyz turns 503 while the request is still in flight.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := r.clients.Get(r.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never reported draining")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	// New connections are refused.
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("public listener still accepts connections while draining")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	select {
	case err := <-r.served:
		t.Fatalf("Serve returned (%v) before the in-flight request finished", err)
	default:
	}
	close(release)
	res := <-inflight
	if res.err != nil || res.status != 200 || res.body != "done" {
		t.Fatalf("in-flight request: %+v", res)
	}
	select {
	case err := <-r.served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		r.served <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}

// TestShutdownDelayKeepsServingWhileNotReady: during limits.shutdownDelay
// /readyz answers 503 so a load balancer stops sending, and every request
// that still arrives (on new connections) is served; only then does the
// listener close.
func TestShutdownDelayKeepsServingWhileNotReady(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	const delay = 2 * time.Second
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, func(c *config.Config) {
		c.Limits.ShutdownDelay = delay
	}), nil)
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	status := func(url string) (int, error) {
		resp, err := fresh.Get(url)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	began := time.Now()
	r.cancel() // SIGTERM
	for {
		if st, err := status(r.admin + "/readyz"); err == nil && st == http.StatusServiceUnavailable {
			break
		}
		if time.Since(began) > delay/2 {
			t.Fatal("/readyz did not turn 503 at once")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	served := 0
	for time.Since(began) < delay-700*time.Millisecond { // a margin for a slow last request
		st, err := status(r.url + "/shop/catalog.do")
		if err != nil || st != 200 {
			t.Fatalf("request %d during the readiness window: %d %v", served+1, st, err)
		}
		served++
		if st, err := status(r.admin + "/readyz"); err != nil || st != http.StatusServiceUnavailable {
			t.Fatalf("/readyz during the window: %d %v", st, err)
		}
	}
	if served == 0 {
		t.Fatal("no request was tried during the window")
	}
	select {
	case err := <-r.served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if el := time.Since(began); el < delay {
			t.Fatalf("Serve returned after %s, before the %s delay", el, delay)
		}
		r.served <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the delay")
	}
	if _, err := status(r.url + "/shop/catalog.do"); err == nil {
		t.Fatal("the public listener still accepts after the drain")
	}
}
