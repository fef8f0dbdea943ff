package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

// echoServer answers every request with its path and counts connections.
func echoServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, r.URL.Path)
		}
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func batchUpstream(t *testing.T, url string, b config.Breaker) *Upstream {
	t.Helper()
	up, err := NewUpstream("target", config.Upstream{URL: url, Timeout: 2 * time.Second, Breaker: b}, Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

type batchReqs struct {
	reqs  []*fasthttp.Request
	resps []*fasthttp.Response
	fails []Failure
	errs  []error
}

func newBatchReqs(methods ...string) *batchReqs {
	b := &batchReqs{fails: make([]Failure, len(methods)), errs: make([]error, len(methods))}
	for i, m := range methods {
		req, resp := new(fasthttp.Request), new(fasthttp.Response)
		req.Header.SetMethod(m)
		req.SetRequestURI(fmt.Sprintf("/item/%d", i))
		b.reqs, b.resps = append(b.reqs, req), append(b.resps, resp)
	}
	return b
}

func TestBatchAnswersEachRequestInOrderOnOneConnection(t *testing.T) {
	t.Parallel()
	srv, conns := echoServer(t, nil)
	up := batchUpstream(t, srv.URL, config.Breaker{Disabled: true})
	for round := range 2 {
		b := newBatchReqs("GET", "HEAD", "GET", "GET", "HEAD", "GET")
		up.ExchangeBatch(b.reqs, b.resps, time.Second, b.fails, b.errs)
		for i := range b.reqs {
			if b.fails[i] != FailNone || b.errs[i] != nil {
				t.Fatalf("round %d request %d: %s %v", round, i, b.fails[i], b.errs[i])
			}
			want := fmt.Sprintf("/item/%d", i)
			if string(b.reqs[i].Header.Method()) == "HEAD" {
				want = ""
			}
			if got := string(b.resps[i].Body()); got != want || b.resps[i].StatusCode() != 200 {
				t.Fatalf("round %d request %d: %d %q, want 200 %q", round, i, b.resps[i].StatusCode(), got, want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for two batches, want one reused", n)
	}
}

func TestBatchRefusesWhatMayNotBePipelined(t *testing.T) {
	t.Parallel()
	srv, conns := echoServer(t, nil)
	up := batchUpstream(t, srv.URL, config.Breaker{Disabled: true})
	b := newBatchReqs("GET", "POST")
	b.reqs[1].SetBodyString("{}")
	if up.Batchable(b.reqs[1]) || !up.Batchable(b.reqs[0]) {
		t.Fatal("Batchable: a POST with a body must not be pipelined, a GET may")
	}
	up.ExchangeBatch(b.reqs, b.resps, time.Second, b.fails, b.errs)
	for i := range b.reqs {
		if b.errs[i] != ErrNotBatchable {
			t.Fatalf("request %d: %v, want ErrNotBatchable for the whole batch", i, b.errs[i])
		}
	}
	if conns.Load() != 0 {
		t.Fatal("a refused batch reached the upstream")
	}
}

func TestBatchResendsOnceWhenThePooledConnectionWasClosed(t *testing.T) {
	t.Parallel()
	srv, conns := echoServer(t, nil)
	up := batchUpstream(t, srv.URL, config.Breaker{Disabled: true})
	b := newBatchReqs("GET", "GET")
	up.ExchangeBatch(b.reqs, b.resps, time.Second, b.fails, b.errs)
	if b.errs[0] != nil {
		t.Fatal(b.errs[0])
	}
	// The upstream drops its idle connections (a restart, an idle timeout).
	srv.CloseClientConnections()
	b = newBatchReqs("GET", "GET", "GET")
	up.ExchangeBatch(b.reqs, b.resps, time.Second, b.fails, b.errs)
	for i := range b.reqs {
		if b.fails[i] != FailNone || string(b.resps[i].Body()) != fmt.Sprintf("/item/%d", i) {
			t.Fatalf("request %d after the upstream closed the pooled connection: %s %v %q", i, b.fails[i], b.errs[i], b.resps[i].Body())
		}
	}
	if up.StaleRetries() != 1 || conns.Load() != 2 {
		t.Fatalf("stale retries %d, connections %d; want one re-send on one new connection", up.StaleRetries(), conns.Load())
	}
}

func TestBatchToAHangingUpstreamTimesOutAndTripsTheBreaker(t *testing.T) {
	t.Parallel()
	addr := hangingUpstream(t)
	up := batchUpstream(t, "http://"+addr, config.Breaker{
		Window: 10 * time.Second, MinRequests: 3, FailureRatio: 0.5, OpenFor: time.Minute, HalfOpenProbes: 1,
	})
	b := newBatchReqs("GET", "GET", "GET")
	start := time.Now()
	up.ExchangeBatch(b.reqs, b.resps, 200*time.Millisecond, b.fails, b.errs)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the batch took %s with a 200ms timeout", took)
	}
	for i := range b.reqs {
		if b.fails[i] != FailTimeout {
			t.Fatalf("request %d: %s %v, want a timeout", i, b.fails[i], b.errs[i])
		}
	}
	if up.State() != gobreaker.StateOpen {
		t.Fatalf("breaker %s after three timeouts, want open: each request of a batch counts", up.State())
	}
	b = newBatchReqs("GET")
	up.ExchangeBatch(b.reqs, b.resps, time.Second, b.fails, b.errs)
	if b.fails[0] != FailBreakerOpen {
		t.Fatalf("with the breaker open: %s, want nothing sent", b.fails[0])
	}
}

func TestBatchStopsAtAnAnswerThatClosesTheConnection(t *testing.T) {
	t.Parallel()
	srv, _ := echoServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/1") {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprint(w, r.URL.Path)
	})
	up := batchUpstream(t, srv.URL, config.Breaker{Disabled: true})
	b := newBatchReqs("GET", "GET", "GET")
	up.ExchangeBatch(b.reqs, b.resps, time.Second, b.fails, b.errs)
	if b.fails[0] != FailNone || b.fails[1] != FailNone || string(b.resps[1].Body()) != "/item/1" {
		t.Fatalf("answers before and with the close: %s %s %q", b.fails[0], b.fails[1], b.resps[1].Body())
	}
	if b.fails[2] != FailReset {
		t.Fatalf("request after the close: %s %v, want reset (never answered)", b.fails[2], b.errs[2])
	}
}
