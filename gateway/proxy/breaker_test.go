package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

// hangingUpstream accepts connections and never answers: the "black hole"
// a wedged upstream looks like from the gateway.
func hangingUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(done)
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestBreakerOpensOnTimeoutsWithDemoDefaults replays the reported case: the
// demo's legacy upstream has a breaker window equal to its timeout, and
// gobreaker drops an outcome whose start left the window, so timeouts in a
// row never opened it. The demo's durations are scaled down 20 times
// (window and timeout keep their ratio) so that the test takes seconds.
func TestBreakerOpensOnTimeoutsWithDemoDefaults(t *testing.T) {
	t.Parallel()
	demo, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	u := demo.Upstreams["legacy"]
	if u.Breaker.Window > u.Timeout {
		t.Logf("the demo's window (%s) is now longer than its timeout (%s)", u.Breaker.Window, u.Timeout)
	}
	const scale = 20
	u.URL = "http://" + hangingUpstream(t)
	u.Timeout /= scale
	u.Breaker.Window /= scale
	u.Breaker.OpenFor = time.Minute
	up, err := NewUpstream("legacy", u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	n := int(u.Breaker.ConsecutiveFailures)
	for i := range n {
		req.Reset()
		req.SetRequestURI("/shop/catalog.do")
		start := time.Now()
		f, err := up.Exchange(req, resp, u.Timeout, false)
		if f != FailTimeout {
			t.Fatalf("timeout %d of %d: failure %s (%v), want timeout", i+1, n, f, err)
		}
		if el := time.Since(start); el > u.Timeout+time.Second {
			t.Fatalf("timeout %d took %s, the timeout is %s", i+1, el, u.Timeout)
		}
	}
	if st := up.State(); st != gobreaker.StateOpen {
		t.Fatalf("after %d consecutive timeouts the breaker is %s, want open", n, st)
	}
	req.Reset()
	req.SetRequestURI("/shop/catalog.do")
	if f, _ := up.Exchange(req, resp, u.Timeout, false); f != FailBreakerOpen {
		t.Fatalf("next exchange: %s, want breaker_open without a call", f)
	}
}
