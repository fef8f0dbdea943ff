package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// restartable is a real HTTP/1.1 upstream that can be stopped and started
// again on the same port, as a deploy restarts a service.
type restartable struct {
	addr string
	srv  *http.Server
	done chan struct{}
	h    http.Handler
}

func (u *restartable) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err = net.Listen("tcp", u.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling interval: the port is being released
	}
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.srv = &http.Server{Handler: u.h}
	u.done = make(chan struct{})
	go func() { defer close(u.done); u.srv.Serve(ln) }()
}

// stop closes the listener and every connection, idle ones included, as a
// process that exits does.
func (u *restartable) stop() {
	u.srv.Close()
	<-u.done
}

// TestPOSTAfterUpstreamRestartIsNotA502: the gateway's pooled connections
// to an upstream die when it restarts. The first POSTs afterwards used to
// get 502 UPSTREAM_RESET although the upstream never saw them; the
// gateway now finds each such connection closed before sending and
// re-sends on a fresh one, once, and counts it.
func TestPOSTAfterUpstreamRestartIsNotA502(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	orders := 0
	up := &restartable{addr: "127.0.0.1:0", h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		orders++
		mu.Unlock()
		w.Write(b)
	})}
	up.start(t)
	t.Cleanup(up.stop)
	routes := []config.Route{{Name: "place-order", Path: "/shop/placeOrder.do", Methods: []string{"POST"}}}
	r := start(t, testConfig(t, map[string]string{"legacy": "http://" + up.addr}, routes, nil), nil)
	post := func() (int, string) {
		resp, body := r.do(t, mustRequest(t, "POST", r.url+"/shop/placeOrder.do", "sku=A1&qty=1"))
		return resp.StatusCode, string(body)
	}
	// Fill the gateway's pool with several connections.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, _ := post(); st != 200 {
				t.Errorf("warm-up POST: %d", st)
			}
		}()
	}
	wg.Wait()
	for round := range 2 {
		up.stop()
		up.start(t)
		mu.Lock()
		before := orders
		mu.Unlock()
		for i := range 6 {
			if st, body := post(); st != 200 || body != "sku=A1&qty=1" {
				t.Fatalf("restart %d, POST %d: %d %s", round+1, i+1, st, body)
			}
		}
		mu.Lock()
		if got := orders - before; got != 6 {
			t.Fatalf("restart %d: the upstream took %d orders for 6 POSTs", round+1, got)
		}
		mu.Unlock()
	}
	if n := r.counter(t, MetricStaleRetries, "backend", "legacy"); n < 2 {
		t.Fatalf("%s = %v, want a re-sent request per restart", MetricStaleRetries, n)
	}
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// TestGETAfterUpstreamRestartIsNotA502: a GET goes out on a pooled
// connection without the stale-connection peek (it is safe to repeat);
// when the upstream restarted meanwhile, the connection dies before the
// answer begins and the gateway re-sends the GET once on a fresh
// connection. No client sees the restart.
func TestGETAfterUpstreamRestartIsNotA502(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := 0
	up := &restartable{addr: "127.0.0.1:0", h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen++
		mu.Unlock()
		io.WriteString(w, "product "+r.URL.Path)
	})}
	up.start(t)
	t.Cleanup(up.stop)
	routes := []config.Route{{Name: "products", Path: "/products/*", Methods: []string{"GET"}}}
	r := start(t, testConfig(t, map[string]string{"legacy": "http://" + up.addr}, routes, nil), nil)
	get := func(i int) (int, string) {
		resp, body := r.do(t, mustRequest(t, "GET", fmt.Sprintf("%s/products/P%d", r.url, i), ""))
		return resp.StatusCode, string(body)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, _ := get(i); st != 200 {
				t.Errorf("warm-up GET: %d", st)
			}
		}()
	}
	wg.Wait()
	for round := range 2 {
		up.stop()
		up.start(t)
		for i := range 6 {
			if st, body := get(i); st != 200 || body != fmt.Sprintf("product /products/P%d", i) {
				t.Fatalf("restart %d, GET %d: %d %s", round+1, i+1, st, body)
			}
		}
	}
	if n := r.counter(t, MetricStaleRetries, "backend", "legacy"); n < 2 {
		t.Fatalf("%s = %v, want a re-sent request per restart", MetricStaleRetries, n)
	}
}
