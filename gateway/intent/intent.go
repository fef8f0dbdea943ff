// Package intent is the gateway's ledger of write intents: for a route that
// declares write affinity, which side (legacy or new) each Idempotency-Key
// was sent to, so that every retry of one business intent goes to the side
// that may already have acted on it, whatever the canary, pin, flag or
// override says by then, and whichever replica decides.
//
// The rule it enforces: a key is moved to the other side only when every
// attempt so far is proven never to have reached its side (the connection
// could not be opened, or the breaker refused to call). Anything else (a
// timeout, a reset after sending, a 5xx) may have booked the order, so the
// key stays where it is and the next retry goes there again. This is how
// payment APIs treat an idempotency key: the first attempt owns it.
//
// A Ledger is shared by every gateway of a fleet (SQLite for one host,
// PostgreSQL for many); claims are compare-and-set so two replicas deciding
// at the same moment agree.
package intent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"
)

// Claim is one attempt's hold on a key.
type Claim struct {
	// ID is the stored identity of the key: a SHA-256 of route and key, so
	// the ledger never holds a client's key in clear.
	ID string
	// Side is where the key's attempts go ("legacy" or "new").
	Side string
	// Attempt numbers this attempt among the key's attempts on Side, from 1.
	Attempt int64
	// First is true when this attempt created the entry.
	First bool
}

// Outcome is what Unsent did with a key.
type Outcome int

// Outcomes of Unsent.
const (
	// Kept: some attempt may have reached the side; the key stays there.
	Kept Outcome = iota
	// Moved: no attempt reached the side; the key now belongs to the other
	// side and this attempt may be sent there.
	Moved
	// Released: no attempt reached the side and there is no other side to
	// try; the key is forgotten, so the next attempt decides afresh.
	Released
)

// Ledger stores which side each write intent belongs to.
type Ledger interface {
	// Acquire records an attempt for key on route. A new key is given to
	// proposed; a known key keeps its side. The returned Claim says where
	// this attempt must go.
	Acquire(ctx context.Context, route, key, proposed string, now time.Time) (Claim, error)
	// Unsent records that c's attempt provably never reached c.Side. When
	// no attempt of the key reached it, the key moves to fallback (or is
	// released when fallback is ""). A key changed meanwhile is Kept.
	Unsent(ctx context.Context, c Claim, fallback string, now time.Time) (Outcome, error)
	// Prune forgets keys first seen before cutoff and returns how many.
	Prune(ctx context.Context, cutoff time.Time) (int64, error)
	// Close releases the ledger's resources.
	Close() error
}

// ErrUnavailable wraps every failure to reach the ledger's store.
var ErrUnavailable = errors.New("intent ledger unavailable")

// KeyID is the stored identity of key on route.
func KeyID(route, key string) string {
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

// RunPrune runs l.Prune every interval until ctx is done, forgetting keys first
// seen more than ttl ago, and logs what it removed or why it could not.
func RunPrune(ctx context.Context, l Ledger, ttl, interval time.Duration, now func() time.Time, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			n, err := l.Prune(ctx, now().Add(-ttl))
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("pruning the intent ledger failed; will retry", "err", err)
			case n > 0:
				log.Debug("pruned expired write intents", "count", n)
			}
		}
	}
}
