package clientrate

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestOneClientsFloodLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	l := New(Options{Rate: 10, Burst: 5, Now: clk.now})
	allowed := 0
	for range 100 {
		if ok, _ := l.Allow("user:flood"); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("the flooding client got %d of 100, want its burst of 5", allowed)
	}
	ok, wait := l.Allow("user:flood")
	if ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("flood: ok=%v wait=%s, want refused with ~100ms", ok, wait)
	}
	for i := range 50 {
		if ok, _ := l.Allow(fmt.Sprintf("user:%d", i)); !ok {
			t.Fatalf("user %d refused because of another client's flood", i)
		}
	}
	clk.advance(100 * time.Millisecond)
	if ok, _ := l.Allow("user:flood"); !ok {
		t.Fatal("the bucket did not refill")
	}
}

func TestClientsAreBounded(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	l := New(Options{Rate: 1, Burst: 1, MaxClients: 3, Now: clk.now})
	for i := range 3 {
		l.Allow(fmt.Sprint(i))
	}
	// Full and nobody idle long enough: newcomers share the overflow bucket.
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("the overflow bucket starts full")
	}
	if ok, _ := l.Allow("b"); ok {
		t.Fatal("newcomers beyond MaxClients share one bucket")
	}
	if l.Len() != 3 {
		t.Fatalf("tracked %d clients, want at most 3", l.Len())
	}
	clk.advance(time.Second) // every bucket refilled: they may be forgotten
	if ok, _ := l.Allow("c"); !ok || l.Len() != 1 {
		t.Fatalf("after the refill time: ok=%v, %d clients tracked; want c admitted alone", ok, l.Len())
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	h := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		hdr  map[string]string
		want string
	}{
		{map[string]string{"X-Api-Key": "k1", "X-User-Id": "u1"}, "key:k1"},
		{map[string]string{"X-User-Id": "u1"}, "user:u1"},
		{map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}, "ip:203.0.113.7"},
		{map[string]string{"X-Forwarded-For": "203.0.113.7"}, "ip:203.0.113.7"},
		{nil, ""}, // a service-to-service call
	}
	for _, tc := range cases {
		if got := Key(h(tc.hdr)); got != tc.want {
			t.Errorf("Key(%v) = %q, want %q", tc.hdr, got, tc.want)
		}
	}
	var nilLimiter *Limiter
	if ok, _ := nilLimiter.Allow("x"); !ok {
		t.Fatal("a nil Limiter allows everything")
	}
	l := New(Options{Rate: 1, Burst: 1})
	for range 10 {
		if ok, _ := l.Allow(""); !ok {
			t.Fatal("a request that names no client has no per-client budget")
		}
	}
	if l.Len() != 0 {
		t.Fatal("the empty key must not be tracked")
	}
}
