package order

import (
	"math"
	"sync"
	"time"
)

// tokenBucket admits rate requests per second on average with bursts of up
// to burst. It is one bucket for the whole service: its job is to protect
// this process and the Catalog behind it, not to be fair between clients
// (the gateway in front does per-client limits). The clock is injected so
// tests drive refills without sleeping.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newTokenBucket(rate float64, burst int, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// take consumes one token. When none is left it returns false and how long
// until one will be, rounded up to whole seconds for Retry-After (RFC 9110
// 10.2.3 allows only integers), at least 1.
func (b *tokenBucket) take() (ok bool, retryAfter int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(b.burst, b.tokens+elapsed*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := (1 - b.tokens) / b.rate
	return false, max(1, int(math.Ceil(wait)))
}
