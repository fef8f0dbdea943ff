package order

import (
	"math"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/internal/clientrate"
	"github.com/gofiber/fiber/v2"
)

// tokenBucket admits rate requests per second on average with bursts of up
// to burst. It is one bucket for the whole service (or for all shadow
// copies): its job is to protect this process and the Catalog behind it;
// fairness between clients is clientrate's (see admission). The clock is
// injected so tests drive refills without sleeping.
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

// admission is the service's rate limiting, three budgets checked in this
// order:
//   - shadow copies (X-Ficus-Shadow: 1, the gateway's parallel run) draw
//     only on a bucket of their own, the size of the service bucket:
//     mirroring never spends a user's budget nor the service's;
//   - each client (clientrate.Key: API key, user, or the address the
//     gateway saw; a service-to-service call names none and skips this)
//     has ClientRatePerSecond, so one client's flood is
//     answered 429 while everyone else is served;
//   - the whole service has RatePerSecond, a ceiling that protects this
//     process and the Catalog behind it.
type admission struct {
	service *tokenBucket
	shadow  *tokenBucket
	clients *clientrate.Limiter // nil: no per-client limit
}

// newAdmission returns nil when rate limiting is disabled.
func newAdmission(cfg Config) *admission {
	if cfg.RatePerSecond <= 0 {
		return nil
	}
	return &admission{
		service: newTokenBucket(cfg.RatePerSecond, cfg.RateBurst, cfg.Now),
		shadow:  newTokenBucket(cfg.RatePerSecond, cfg.RateBurst, cfg.Now),
		clients: clientrate.New(clientrate.Options{Rate: cfg.ClientRatePerSecond, Burst: cfg.ClientRateBurst, Now: cfg.Now}),
	}
}

func (s *Service) rateLimit(c *fiber.Ctx) error {
	a := s.limiter
	if a == nil {
		return c.Next()
	}
	refuse := func(msg string, retry int) error {
		e := apierr.New(apierr.CodeRateLimited, "%s; retry after %d s", msg, retry)
		e.RetryAfter = retry
		return e
	}
	if isDryRun(c) {
		if ok, retry := a.shadow.take(); !ok {
			return refuse("too many shadow requests", retry)
		}
		return c.Next()
	}
	key := clientrate.Key(func(h string) string { return c.Get(h) })
	if ok, wait := a.clients.Allow(key); !ok {
		return refuse("this client is over its request rate", max(1, int(math.Ceil(wait.Seconds()))))
	}
	if ok, retry := a.service.take(); !ok {
		return refuse("too many requests", retry)
	}
	return c.Next()
}
