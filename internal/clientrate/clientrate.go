// Package clientrate is a token bucket per client, for the new services:
// one client's flood is answered 429 without starving the others, which one
// bucket for the whole service did (issue 15: 591 of 1,000 quick requests
// answered 429 at canary 100). It is built on golang.org/x/time/rate, with
// a bounded set of clients and an injected clock.
package clientrate

import (
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configures a Limiter.
type Options struct {
	// Rate is each client's sustained rate, in requests per second. Zero
	// or negative: New returns nil (no per-client limit).
	Rate float64
	// Burst is each client's bucket size, in requests. Zero: max(1, Rate).
	Burst int
	// MaxClients bounds the clients tracked at once. When it is reached,
	// clients whose bucket has refilled (idle long enough) are forgotten;
	// if none has, new clients share one overflow bucket until some do.
	// Zero: 10,000.
	MaxClients int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Limiter holds one bucket per client key. Safe for concurrent use.
type Limiter struct {
	rate     rate.Limit
	burst    int
	max      int
	now      func() time.Time
	refill   time.Duration // how long an empty bucket takes to fill
	mu       sync.Mutex
	clients  map[string]*client
	overflow *rate.Limiter
}

type client struct {
	lim  *rate.Limiter
	last time.Time
}

// New returns a Limiter, or nil when o.Rate is not positive; a nil
// *Limiter allows everything.
func New(o Options) *Limiter {
	if o.Rate <= 0 {
		return nil
	}
	if o.Burst <= 0 {
		o.Burst = max(1, int(o.Rate))
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Limiter{
		rate: rate.Limit(o.Rate), burst: o.Burst, max: o.MaxClients, now: o.Now,
		refill:   time.Duration(float64(o.Burst) / o.Rate * float64(time.Second)),
		clients:  make(map[string]*client),
		overflow: rate.NewLimiter(rate.Limit(o.Rate), o.Burst),
	}
}

// Allow spends one token of key's bucket. When there is none it returns
// false and how long until one is available. The empty key (no client,
// see Key) is always allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || key == "" {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	lim := l.bucket(key, now)
	r := lim.ReserveN(now, 1)
	l.mu.Unlock()
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// bucket returns key's limiter; l.mu is held.
func (l *Limiter) bucket(key string, now time.Time) *rate.Limiter {
	if c, ok := l.clients[key]; ok {
		c.last = now
		return c.lim
	}
	if len(l.clients) >= l.max {
		// A bucket idle for its refill time is full again: forgetting it
		// loses nothing.
		for k, c := range l.clients {
			if now.Sub(c.last) >= l.refill {
				delete(l.clients, k)
			}
		}
		if len(l.clients) >= l.max {
			return l.overflow
		}
	}
	c := &client{lim: rate.NewLimiter(l.rate, l.burst), last: now}
	l.clients[key] = c
	return c.lim
}

// Len is the number of clients tracked (tests, metrics).
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// Key names the client of a request, first hit wins:
//   - "key:" and the X-Api-Key header (the caller's credential),
//   - "user:" and the X-User-Id header (the gateway's sticky user key),
//   - "ip:" and the last address of X-Forwarded-For (the peer the gateway
//     saw; the gateway replaces an untrusted client's list, so the last
//     entry is the gateway's own observation).
//
// A request with none of these did not come through the gateway and names
// no user: a service-to-service call (the dual-run sync, the order
// service asking the catalog). Key returns "" for it, and Allow("") has no
// per-client budget: only the service's own ceiling applies. Keying such
// calls by their address would put every internal caller in one bucket
// sized for one user.
//
// get reads a request header. Values are used as given (bounded in length
// by the server's header limit); the keys live only in memory.
func Key(get func(name string) string) string {
	if v := get("X-Api-Key"); v != "" {
		return "key:" + v
	}
	if v := get("X-User-Id"); v != "" {
		return "user:" + v
	}
	if v := get("X-Forwarded-For"); v != "" {
		if i := strings.LastIndexByte(v, ','); i >= 0 {
			v = v[i+1:]
		}
		if v = strings.TrimSpace(v); v != "" {
			return "ip:" + v
		}
	}
	return ""
}
