package catalog

import (
	"sync"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/internal/clientrate"
	"github.com/gofiber/fiber/v2"
)

// bucket is a token bucket shared by the whole service (or by all shadow
// copies): it protects the single SQLite writer from a flood. Fairness
// between clients is clientrate's (see rateLimit).
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate float64, burst int, now func() time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), now: now}
}

// take spends one token, or reports how long until one is available.
func (b *bucket) take() (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// rateLimit returns the catalog's admission middleware, or nil when rate
// limiting is off (Config.RateLimit negative). Three budgets, checked in
// this order:
//   - shadow copies (X-Ficus-Shadow: 1, sent by the gateway's parallel run)
//     draw only on a bucket of their own, the size of the service bucket:
//     mirroring never spends a user's budget nor the service's;
//   - each client (clientrate.Key: API key, user, or the address the
//     gateway saw; a service-to-service call names none and skips this)
//     has Config.ClientRateLimit, so one client's flood is
//     answered 429 while everyone else is served;
//   - the whole service has Config.RateLimit, a ceiling that protects the
//     single SQLite writer.
func (s *Service) rateLimit() fiber.Handler {
	if s.cfg.RateLimit <= 0 {
		return nil
	}
	service := newBucket(s.cfg.RateLimit, s.cfg.RateBurst, s.now)
	shadow := newBucket(s.cfg.RateLimit, s.cfg.RateBurst, s.now)
	clients := clientrate.New(clientrate.Options{Rate: s.cfg.ClientRateLimit, Burst: s.cfg.ClientRateBurst, Now: s.now})
	refuse := func(msg string, wait time.Duration) error {
		s.metrics.limited()
		return &apierr.Error{Code: apierr.CodeRateLimited, Message: msg, RetryAfter: retryAfterSeconds(wait)}
	}
	return func(c *fiber.Ctx) error {
		if isShadow(c) {
			if ok, wait := shadow.take(); !ok {
				return refuse("the catalog is receiving more shadow traffic than it serves; retry later", wait)
			}
			return c.Next()
		}
		key := clientrate.Key(func(h string) string { return c.Get(h) })
		if ok, wait := clients.Allow(key); !ok {
			return refuse("this client is over its request rate; retry later", wait)
		}
		if ok, wait := service.take(); !ok {
			return refuse("the catalog is receiving more requests than it serves; retry later", wait)
		}
		return c.Next()
	}
}
