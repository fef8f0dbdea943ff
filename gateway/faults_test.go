package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/internal/faultproxy"
)

// The fault suite: every upstream of a demo-shaped gateway (the legacy
// shop, the ACL backend serving the new contract from the legacy, the new
// catalog) sits behind an in-process TCP fault proxy. Each scenario puts
// one fault on one upstream and asserts what a client of that upstream's
// route sees: a structured error (or the legacy fallback for a safe
// request on the new side), never a hang beyond the timeout plus 1 s, and
// the breaker opening and closing again once the fault is gone.

const (
	faultTimeout = 300 * time.Millisecond
	faultOpenFor = 300 * time.Millisecond
	faultTrips   = 3 // consecutive failures that open a breaker
)

// faultRig is one gateway with its three upstreams behind fault proxies.
type faultRig struct {
	r       *running
	proxies map[string]*faultproxy.Proxy
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	big := strings.Repeat("x", 32<<10)
	serve := func(kind string) *upstream {
		return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("big") != "" {
				w.Header().Set("Content-Type", "text/plain")
				if r.URL.Query().Get("chunked") == "" {
					w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				}
				io.WriteString(w, big)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"served_by":%q}`, kind)
		})
	}
	rig := &faultRig{proxies: map[string]*faultproxy.Proxy{}}
	urls := map[string]string{}
	for i, name := range []string{"legacy", "acl", "catalog"} {
		up := serve(name)
		p, err := faultproxy.New(strings.TrimPrefix(up.URL, "http://"), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		rig.proxies[name] = p
		urls[name] = p.URL()
	}
	routes := []config.Route{
		{Name: "shop", Path: "/shop/*"},
		// The ACL backend serves this route (canary 0).
		{Name: "products", Path: "/api/v1/products/*", Legacy: "acl", New: "catalog", BufferResponses: true},
		// The catalog serves this one (canary 100); the ACL stands in.
		{Name: "products-new", Path: "/api/v2/products/*", Legacy: "acl", New: "catalog", Canary: 100, BufferResponses: true},
	}
	cfg := testConfig(t, urls, routes, func(c *config.Config) {
		for name, u := range c.Upstreams {
			u.Kind = map[string]string{"legacy": "legacy", "acl": "acl", "catalog": "new"}[name]
			u.Timeout = faultTimeout
			u.DialTimeout = faultTimeout
			u.Breaker = config.Breaker{Window: 2 * time.Second, MinRequests: 100, FailureRatio: 1,
				ConsecutiveFailures: faultTrips, OpenFor: faultOpenFor, HalfOpenProbes: 1}
			c.Upstreams[name] = u
		}
	})
	rig.r = start(t, cfg, nil)
	return rig
}

// target says which route a scenario calls to reach an upstream, and what
// a failure looks like there.
type faultTarget struct {
	upstream string
	path     string
	fallback bool // a safe request falls back to the legacy side (ACL)
}

var faultTargets = []faultTarget{
	{"legacy", "/shop/catalog.do", false},
	{"acl", "/api/v1/products/A1", false},
	{"catalog", "/api/v2/products/A1", true},
}

type faultOutcome struct {
	status   int
	code     string
	fallback string
	elapsed  time.Duration
	err      error
}

func (rig *faultRig) call(t *testing.T, path string) faultOutcome {
	t.Helper()
	began := time.Now()
	resp, err := rig.r.clients.Get(rig.r.url + path)
	if err != nil {
		return faultOutcome{err: err, elapsed: time.Since(began)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	o := faultOutcome{status: resp.StatusCode, fallback: resp.Header.Get(HeaderFallback), elapsed: time.Since(began), err: err}
	if resp.StatusCode >= 400 && err == nil {
		o.code = decodeErr(t, b).Code
	}
	return o
}

// bounded fails when a call took longer than the timeout plus 1 s.
func bounded(t *testing.T, o faultOutcome) {
	t.Helper()
	if o.elapsed > faultTimeout+time.Second {
		t.Fatalf("the call took %s: longer than the timeout (%s) + 1s", o.elapsed, faultTimeout)
	}
}

func TestFaultScenarios(t *testing.T) {
	t.Parallel()
	type scenario struct {
		name  string
		fault faultproxy.Fault
		query string
		// want is the code a client of a route without fallback gets;
		// "" means the answer is a success.
		want string
	}
	scenarios := []scenario{
		{"latency under the timeout", faultproxy.Fault{Kind: faultproxy.Latency, Latency: 50 * time.Millisecond}, "", ""},
		{"latency over the timeout", faultproxy.Fault{Kind: faultproxy.Latency, Latency: 2 * time.Second}, "", CodeUpstreamTimeout},
		{"black hole", faultproxy.Fault{Kind: faultproxy.BlackHole}, "", CodeUpstreamTimeout},
		{"reset", faultproxy.Fault{Kind: faultproxy.Reset}, "", CodeUpstreamReset},
		{"slow close", faultproxy.Fault{Kind: faultproxy.SlowClose, Latency: 2 * time.Second}, "", ""},
		// A body of known length under the stream threshold is read whole
		// before the answer starts: a structured error.
		{"bandwidth", faultproxy.Fault{Kind: faultproxy.Bandwidth, BytesPerSecond: 4 << 10}, "?big=1", "5xx"},
		// A body of unknown length streams: once the 200 is out, the only
		// honest signal of a failure is a truncated body, still in bounds.
		{"bandwidth, streamed body", faultproxy.Fault{Kind: faultproxy.Bandwidth, BytesPerSecond: 4 << 10}, "?big=1&chunked=1", "truncated"},
		{"refused", faultproxy.Fault{Kind: faultproxy.Refuse}, "", CodeUpstreamUnreach},
	}
	for _, tg := range faultTargets {
		for _, sc := range scenarios {
			t.Run(tg.upstream+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				rig := newFaultRig(t)
				// A healthy answer first: pooled connections exist when the
				// fault arrives, as in production.
				if o := rig.call(t, tg.path); o.err != nil || o.status != 200 {
					t.Fatalf("before the fault: %+v", o)
				}
				if err := rig.proxies[tg.upstream].Set(sc.fault); err != nil {
					t.Fatal(err)
				}
				o := rig.call(t, tg.path+sc.query)
				bounded(t, o)
				if sc.want == "truncated" && o.err != nil && o.status == 200 {
					return // the stream was cut: the client knows the body is incomplete
				}
				if o.err != nil {
					t.Fatalf("transport error instead of an answer: %v (status %d)", o.err, o.status)
				}
				switch {
				case sc.want == "":
					if o.status != 200 {
						t.Fatalf("status %d %s, want 200", o.status, o.code)
					}
				case tg.fallback:
					if o.status != 200 || o.fallback == "" {
						t.Fatalf("new side failing: %d %s fallback %q, want the legacy side's 200", o.status, o.code, o.fallback)
					}
				case sc.want == "5xx", sc.want == "truncated":
					if o.status < 500 || o.code == "" {
						t.Fatalf("status %d code %q, want a structured 5xx", o.status, o.code)
					}
				default:
					if o.code != sc.want || o.status < 500 {
						t.Fatalf("status %d code %q, want %s", o.status, o.code, sc.want)
					}
				}
			})
		}
	}
}

// TestBreakerOpensAndRecoversThroughFaults: on each upstream, a black hole
// opens the breaker after faultTrips timeouts (each bounded), callers then
// get BACKEND_UNAVAILABLE at once (or the legacy fallback on the new side),
// and when the fault clears the breaker half-opens and closes.
func TestBreakerOpensAndRecoversThroughFaults(t *testing.T) {
	t.Parallel()
	for _, tg := range faultTargets {
		t.Run(tg.upstream, func(t *testing.T) {
			t.Parallel()
			rig := newFaultRig(t)
			if o := rig.call(t, tg.path); o.status != 200 {
				t.Fatalf("before the fault: %+v", o)
			}
			rig.proxies[tg.upstream].Set(faultproxy.Fault{Kind: faultproxy.BlackHole})
			for i := range faultTrips {
				o := rig.call(t, tg.path)
				bounded(t, o)
				if tg.fallback {
					if o.status != 200 || o.fallback != "timeout" {
						t.Fatalf("timeout %d on the new side: %d fallback %q", i+1, o.status, o.fallback)
					}
				} else if o.code != CodeUpstreamTimeout {
					t.Fatalf("timeout %d: %d %s", i+1, o.status, o.code)
				}
			}
			if st := rig.r.counter(t, MetricBreakerState, LabelUpstream, tg.upstream); st != 2 {
				t.Fatalf("breaker state %v after %d timeouts, want 2 (open)", st, faultTrips)
			}
			o := rig.call(t, tg.path)
			if o.elapsed >= faultTimeout {
				t.Fatalf("an open breaker must answer without waiting for the upstream, took %s", o.elapsed)
			}
			if tg.fallback {
				if o.status != 200 || o.fallback != "breaker_open" {
					t.Fatalf("open breaker on the new side: %d fallback %q", o.status, o.fallback)
				}
			} else if o.status != 503 || o.code != CodeBackendUnavailable {
				t.Fatalf("open breaker: %d %s", o.status, o.code)
			}
			rig.proxies[tg.upstream].Set(faultproxy.Fault{})
			deadline := time.Now().Add(5 * time.Second)
			for rig.r.counter(t, MetricBreakerState, LabelUpstream, tg.upstream) != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the breaker did not close after the fault cleared")
				}
				rig.call(t, tg.path)              // probes, once OpenFor has passed
				time.Sleep(20 * time.Millisecond) // polling interval
			}
			if o := rig.call(t, tg.path); o.status != 200 || o.fallback != "" {
				t.Fatalf("after recovery: %d fallback %q", o.status, o.fallback)
			}
		})
	}
}
