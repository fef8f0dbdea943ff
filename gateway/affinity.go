package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/intent"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
)

// Write affinity (routes[].affinity): every attempt of one write intent,
// named by its Idempotency-Key, goes to the side its first attempt went to,
// through the shared ledger of gateway/intent. The decision engine's answer
// (override, pin, flag, canary) applies only to a key's first attempt; a key
// moves to the legacy side only when the ledger proves that no attempt ever
// reached the new side. One intent is therefore booked by one side, however
// the canary moves, whichever replica decides, whichever side is down.

// Error codes of write affinity.
const (
	// CodeIntentPending (503): an earlier attempt of this key may have
	// reached a side that cannot be reached now; sending it to the other
	// side could book it twice. Retry with the same key.
	CodeIntentPending = "IDEMPOTENCY_SIDE_UNAVAILABLE"
	// CodeIntentLedger (503): the intent ledger could not be read, so the
	// gateway cannot tell where this key belongs. Retry with the same key.
	CodeIntentLedger = "IDEMPOTENCY_LEDGER_UNAVAILABLE"
)

// MetricIntents counts write-affinity outcomes by route and result.
const MetricIntents = "ficus_intent_bindings_total"

// maxIntentKey bounds the keys the gateway binds; longer ones pass unbound
// and the services refuse them as invalid.
const maxIntentKey = 255

// intentTimeout bounds one ledger call on the request path.
const intentTimeout = 2 * time.Second

var (
	errIntentPending = &Error{Status: fiber.StatusServiceUnavailable, Code: CodeIntentPending, RetryAfter: 1,
		Message: "an earlier attempt with this Idempotency-Key may have reached a side that is unavailable now; retry later with the same key"}
	errIntentLedger = &Error{Status: fiber.StatusServiceUnavailable, Code: CodeIntentLedger, RetryAfter: 1,
		Message: "cannot tell which side holds this Idempotency-Key right now; retry later with the same key"}
)

// Results of MetricIntents.
const (
	intentFirst      = iota // a new key, bound to the decided side
	intentKept              // a retry, sent where its key is bound (the decision agreed)
	intentRebound           // a retry the decision would have sent to the other side
	intentMoved             // proven unsent on the new side; moved to the legacy side
	intentReleased          // proven unsent everywhere; the key is free again
	intentRefused           // 503: may have reached an unavailable side
	intentLedgerDown        // 503: the ledger failed
	numIntentResults
)

var intentResultNames = [numIntentResults]string{"first", "kept", "rebound", "moved", "released", "refused", "ledger_unavailable"}

// intentMetrics holds one counter per route and result.
type intentMetrics [][numIntentResults]prometheus.Counter

// newIntentMetrics registers the counters of the routes named in names (by
// route index; "" for a route without affinity, which gets none).
func newIntentMetrics(reg *prometheus.Registry, names []string) (intentMetrics, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricIntents,
		Help: "Writes of routes with write affinity, by route and what the intent ledger did: first, kept, rebound, moved, released, refused, ledger_unavailable.",
	}, []string{"route", "result"})
	if err := reg.Register(v); err != nil {
		return nil, err
	}
	m := make(intentMetrics, len(names))
	for i, n := range names {
		if n == "" {
			continue
		}
		for r := range numIntentResults {
			m[i][r] = v.WithLabelValues(n, intentResultNames[r])
		}
	}
	return m, nil
}

// bindIntent looks up the side of the request's write intent and sends the
// request there. It does nothing for safe methods, for routes without
// affinity and for requests without a key.
func (g *Gateway) bindIntent(c *fiber.Ctx, rs *routeState, x *exchange) error {
	if rs.affinity == nil || x.method.Safe() || rs.ups[decide.New] == nil {
		return nil
	}
	key := c.Request().Header.PeekCanonical(rs.affinity)
	if len(key) == 0 || len(key) > maxIntentKey {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), intentTimeout)
	defer cancel()
	claim, err := g.intents.Acquire(ctx, rs.name, utils.UnsafeString(key), x.backend.String(), g.now())
	if err != nil {
		g.intentMetrics[x.ri][intentLedgerDown].Inc()
		x.err = err
		return errIntentLedger
	}
	x.intent, x.bound = claim, true
	bound, ok := decide.ParseBackend(claim.Side)
	switch {
	case !ok:
		// A side this build does not know (a newer replica wrote it): not
		// guessing is the only safe answer.
		g.intentMetrics[x.ri][intentRefused].Inc()
		return errIntentPending
	case claim.First:
		g.intentMetrics[x.ri][intentFirst].Inc()
	case bound == x.backend:
		g.intentMetrics[x.ri][intentKept].Inc()
	default:
		g.intentMetrics[x.ri][intentRebound].Inc()
		x.backend, x.reason = bound, decide.ReasonAffinity
	}
	return nil
}

// intentUnsent records that the attempt just made provably never reached
// its side. With fallback, it reports whether the request may now go to the
// legacy side: only when no attempt of the key ever reached the new side.
// Otherwise the caller answers errIntentPending: the key may be booked on a
// side that cannot be asked now. Without fallback, a key none of whose
// attempts left the gateway is released, so the client's retry is decided
// afresh instead of waiting for a side that never saw it.
func (g *Gateway) intentUnsent(rs *routeState, x *exchange, fallback bool, rid []byte) (mayFallBack bool) {
	to := ""
	if fallback {
		to = decide.Legacy.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), intentTimeout)
	defer cancel()
	out, err := g.intents.Unsent(ctx, x.intent, to, g.now())
	if err != nil {
		g.intentMetrics[x.ri][intentLedgerDown].Inc()
		g.log.LogAttrs(ctx, slog.LevelWarn, "intent ledger failed; the key stays where it was bound",
			slog.String("request_id", string(rid)), slog.String("route", rs.name), slog.Any("err", err))
		return false
	}
	switch out {
	case intent.Moved:
		g.intentMetrics[x.ri][intentMoved].Inc()
		x.intent = intent.Claim{ID: x.intent.ID, Side: to, Attempt: 1}
		return true
	case intent.Released:
		g.intentMetrics[x.ri][intentReleased].Inc()
	case intent.Kept:
		if fallback {
			g.intentMetrics[x.ri][intentRefused].Inc()
		}
	}
	return false
}
