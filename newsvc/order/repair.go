package order

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"
)

// maxSweep bounds how many stale claims one sweep resolves; the next sweep
// takes the rest.
const maxSweep = 100

// sweep resolves idempotency claims left pending beyond the lease: their
// request died with its process (kill -9, a crash) between claiming the key
// and booking the order. A claim whose order exists is finished from it; any
// other is retired and the reservations made under its order id are
// released by reference. Claims of requests still running in this process
// are left alone. Every repair is logged and counted.
func (s *Service) sweep(ctx context.Context) {
	claims, err := staleClaims(ctx, s.db.R, s.cfg.Now().Add(-s.cfg.IdempotencyLease), maxSweep)
	if err != nil {
		s.log.Error("sweeping stale idempotency claims", "err", err)
		return
	}
	for _, c := range claims {
		s.mu.Lock()
		_, running := s.inflight[c.key]
		s.mu.Unlock()
		if running {
			continue
		}
		if err := s.resolveClaim(ctx, c); err != nil {
			s.log.Error("resolving a stale idempotency claim", "err", err, "order_id", c.orderID,
				"intent_ref", IntentRef(c.key))
		}
	}
	s.flushReleases(ctx, "")
}

// resolveClaim finishes or retires one stale claim in one transaction. Both
// are conditional on the claim being exactly as read (still pending, same
// claimed_at), so a takeover by a retry that won the race is left alone.
func (s *Service) resolveClaim(ctx context.Context, c staleClaim) error {
	var kind string
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		kind = ""
		o, err := getOrder(ctx, tx, c.orderID)
		switch {
		case errors.Is(err, errNotFound):
			retired, err := retireClaim(ctx, tx, c.key, c.orderID, c.claimedAt)
			if err != nil || !retired {
				return err
			}
			kind = repairClaimReleased
			return queueReferenceRelease(ctx, tx, c.orderID, causeStaleClaim, s.cfg.Now())
		case err != nil:
			return err
		}
		body, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("encoding order %s: %w", o.ID, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET state = 'done', status = ?, location = ?, body = ?
			WHERE key = ? AND order_id = ? AND state = 'pending' AND claimed_at = ?`,
			fiber.StatusCreated, "/api/v1/orders/"+o.ID, body, c.key, c.orderID, formatTime(c.claimedAt))
		if err != nil {
			return fmt.Errorf("finishing idempotency claim of order %s: %w", o.ID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			kind = repairClaimFinished
		}
		return nil
	})
	if err != nil || kind == "" {
		return err
	}
	s.metrics.repairs.WithLabelValues(kind).Inc()
	switch kind {
	case repairClaimFinished:
		s.log.Info("stale idempotency claim finished from its order", "order_id", c.orderID,
			"intent_ref", IntentRef(c.key), "claimed_at", c.claimedAt)
	default:
		s.log.Warn("stale idempotency claim retired: no order was booked; releasing its stock reservations",
			"order_id", c.orderID, "intent_ref", IntentRef(c.key), "claimed_at", c.claimedAt)
	}
	return nil
}

// flushReferenceReleases asks the Catalog to release the reservations of
// each queued reference and forgets those it acknowledged; the rest wait
// for the next flush.
func (s *Service) flushReferenceReleases(ctx context.Context, requestID string) {
	refs, err := pendingReferenceReleases(ctx, s.db.W, 100)
	if err != nil {
		s.log.Error("reading pending releases by reference", "err", err, "request_id", requestID)
		return
	}
	for _, ref := range refs {
		if err := s.catalog.releaseReference(ctx, ref, requestID); err != nil {
			s.metrics.releaseFailed.Inc()
			s.log.Warn("release of reservations by reference not acknowledged; will retry", "order_id", ref,
				"err", err, "request_id", requestID)
			return
		}
		if _, err := s.db.W.ExecContext(ctx, `DELETE FROM pending_reference_releases WHERE reference = ?`, ref); err != nil {
			s.log.Error("forgetting an acknowledged release by reference", "err", err, "order_id", ref, "request_id", requestID)
			return
		}
		s.metrics.repairs.WithLabelValues(repairReferenceReleased).Inc()
		s.log.Info("stock reservations released by reference", "order_id", ref, "request_id", requestID)
	}
}
