package gateway

import (
	"sync/atomic"
	"time"
)

// rateLimiter is a lock-free token bucket in its GCRA form: one atomic
// "theoretical arrival time" per route, advanced by one emission interval
// per admitted request. A request is refused when admitting it would put
// the TAT more than burst intervals ahead of now.
type rateLimiter struct {
	interval int64 // ns per token
	tau      int64 // ns of burst tolerance
	tat      atomic.Int64
}

// newRateLimiter returns nil (unlimited) when rps is 0.
func newRateLimiter(rps float64, burst int) *rateLimiter {
	if rps <= 0 {
		return nil
	}
	iv := int64(float64(time.Second) / rps)
	if iv < 1 {
		iv = 1
	}
	return &rateLimiter{interval: iv, tau: iv * int64(max(burst, 1))}
}

// allow admits one request at now (unix ns) or says how long to wait.
func (l *rateLimiter) allow(now int64) (ok bool, wait time.Duration) {
	for {
		tat := l.tat.Load()
		base := max(tat, now)
		next := base + l.interval
		if over := next - now - l.tau; over > 0 {
			return false, time.Duration(over)
		}
		if l.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}
