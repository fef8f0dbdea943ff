package gateway

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRateLimiter times the route limiter's two paths apart: admit
// (every call admitted, as on a route below its limit) and refuse (every
// call refused, as on a route over it). Each reports the share of its calls
// that took the other path, which should be 0 (with parallel callers, a
// few calls read the shared clock late): a benchmark that mixed the two
// would time whichever dominated.
func BenchmarkRateLimiter(b *testing.B) {
	b.Run("admit", func(b *testing.B) {
		l := newRateLimiter(1000, 10)
		now := time.Now().UnixNano()
		var other int
		b.ReportAllocs()
		for b.Loop() {
			// The clock moves one emission interval per call: exactly the
			// route's rate, each call admitted.
			now += l.interval
			if ok, _ := l.allow(now); !ok {
				other++
			}
		}
		b.ReportMetric(float64(other)/float64(b.N), "refused/op")
	})
	b.Run("admit parallel", func(b *testing.B) {
		// Contended CAS: every goroutine admits on the one limiter, on a
		// shared clock that moves one interval per call.
		l := newRateLimiter(1000, 10)
		var clock atomic.Int64
		clock.Store(time.Now().UnixNano())
		var other atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, _ := l.allow(clock.Add(l.interval)); !ok {
					other.Add(1)
				}
			}
		})
		b.ReportMetric(float64(other.Load())/float64(b.N), "refused/op")
	})
	b.Run("refuse", func(b *testing.B) {
		l := newRateLimiter(1000, 10)
		now := time.Now().UnixNano()
		for range 10 { // spend the burst
			l.allow(now)
		}
		var other int
		b.ReportAllocs()
		for b.Loop() {
			if ok, _ := l.allow(now); ok {
				other++
			}
		}
		b.ReportMetric(float64(other)/float64(b.N), "admitted/op")
	})
}
