package faultproxy_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/internal/faultproxy"
)

func start(t *testing.T) (*faultproxy.Proxy, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	p, err := faultproxy.New(strings.TrimPrefix(srv.URL, "http://"), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, &served
}

func get(p *faultproxy.Proxy, timeout time.Duration) (string, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(p.URL() + "/")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func TestFaults(t *testing.T) {
	t.Parallel()
	p, served := start(t)

	if body, err := get(p, 2*time.Second); err != nil || body != "hello" {
		t.Fatalf("no fault: %q %v", body, err)
	}

	// Reset: the request never reaches the server.
	if err := p.Set(faultproxy.Fault{Kind: faultproxy.Reset}); err != nil {
		t.Fatal(err)
	}
	before := served.Load()
	if _, err := get(p, 2*time.Second); err == nil {
		t.Fatal("reset: request succeeded")
	}
	if served.Load() != before {
		t.Fatal("reset: the server saw the request")
	}

	// ResetAfterSend: the server acts, the client gets no answer.
	_ = p.Set(faultproxy.Fault{Kind: faultproxy.ResetAfterSend})
	before = served.Load()
	if _, err := get(p, 2*time.Second); err == nil {
		t.Fatal("reset-after-send: request succeeded")
	}
	if served.Load() != before+1 {
		t.Fatalf("reset-after-send: server saw %d requests, want 1", served.Load()-before)
	}

	// BlackHole: the client times out.
	_ = p.Set(faultproxy.Fault{Kind: faultproxy.BlackHole})
	var ne net.Error
	if _, err := get(p, 200*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("black hole: want a timeout, got %v", err)
	}

	// Refuse: connection refused, then back.
	_ = p.Set(faultproxy.Fault{Kind: faultproxy.Refuse})
	if _, err := get(p, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("refuse: want connection refused, got %v", err)
	}
	if err := p.Set(faultproxy.Fault{}); err != nil {
		t.Fatal(err)
	}
	if body, err := get(p, 2*time.Second); err != nil || body != "hello" {
		t.Fatalf("after refuse: %q %v", body, err)
	}
	// Reset, reset-after-send and the black hole each hit at least one
	// connection (a client may open another after a reset); refused
	// connections never reach the proxy.
	if p.Hits() < 3 {
		t.Fatalf("hits = %d, want at least 3", p.Hits())
	}
}

func TestRateHitsAShare(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	_ = p.Set(faultproxy.Fault{Kind: faultproxy.Reset, Rate: 0.3})
	failed := 0
	const n = 200
	for range n {
		if _, err := get(p, 2*time.Second); err != nil {
			failed++
		}
	}
	if failed < n*15/100 || failed > n*45/100 {
		t.Fatalf("%d of %d failed at rate 0.3", failed, n)
	}
}

func TestLatencyDelays(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	_ = p.Set(faultproxy.Fault{Kind: faultproxy.Latency, Latency: 300 * time.Millisecond})
	// A client timeout below the added latency must expire: the delay is real.
	if _, err := get(p, 100*time.Millisecond); err == nil {
		t.Fatal("latency 300ms: a 100ms client did not time out")
	}
	if body, err := get(p, 5*time.Second); err != nil || body != "hello" {
		t.Fatalf("latency: %q %v", body, err)
	}
}
