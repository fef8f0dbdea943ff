package order

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
)

// Integrity is the body of GET /internal/v1/integrity: what reconcile needs
// to see intents rather than rows. It is for operators and reconcile, not
// part of the public contract (openapi.yaml); see docs/migration.md.
type Integrity struct {
	// LeaseSeconds is the idempotency lease: claims pending longer are stale.
	LeaseSeconds int64 `json:"leaseSeconds"`
	// StaleClaims are idempotency claims pending beyond the lease (the
	// sweeper resolves them; one that stays here is stuck). Sent on every
	// page.
	StaleClaims []StaleClaim `json:"staleClaims"`
	// Orders are one page of every order in booking order.
	Orders []OrderLineage `json:"orders"`
	// NextCursor continues the walk; absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// StaleClaim is a claim pending beyond the lease. KeyFingerprint is
// IntentRef of the Idempotency-Key (the key itself is the client's secret
// and is not shown); it matches the legacy's ext_ref of an order booked
// through the anti-corruption layer with the same key.
type StaleClaim struct {
	KeyFingerprint string    `json:"keyFingerprint"`
	OrderID        string    `json:"orderId"`
	ClaimedAt      time.Time `json:"claimedAt"`
}

// OrderLineage is one order's identity and lineage: IntentRef for orders
// booked here, ExtRef for orders mirrored from the legacy.
type OrderLineage struct {
	OrderID       string    `json:"orderId"`
	IntentRef     string    `json:"intentRef,omitempty"`
	ExtRef        string    `json:"extRef,omitempty"`
	LegacyOrderNo string    `json:"legacyOrderNo,omitempty"`
	Status        Status    `json:"status"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Page bounds of the integrity walk.
const (
	defaultIntegrityPage = 500
	maxIntegrityPage     = 1000
)

// handleIntegrity serves GET /internal/v1/integrity?limit=&cursor=.
func (s *Service) handleIntegrity(c *fiber.Ctx) error {
	if !s.cfg.InternalFromAnyAddr && !c.Context().RemoteIP().IsLoopback() {
		return apierr.New(apierr.CodeNotFound, "internal endpoints answer loopback clients only")
	}
	limit := defaultIntegrityPage
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxIntegrityPage {
			return apierr.Validation([]apierr.Violation{{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxIntegrityPage)}})
		}
		limit = n
	}
	var after int64
	if raw := c.Query("cursor"); raw != "" {
		seq, ok := decodeCursor(raw)
		if !ok {
			return apierr.Validation([]apierr.Violation{{Field: "cursor", Message: "is not a cursor this service issued"}})
		}
		after = seq
	}
	out, err := s.integrity(c.UserContext(), after, limit)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Service) integrity(ctx context.Context, after int64, limit int) (Integrity, error) {
	out := Integrity{LeaseSeconds: int64(s.cfg.IdempotencyLease / time.Second), StaleClaims: []StaleClaim{}, Orders: []OrderLineage{}}
	claims, err := staleClaims(ctx, s.db.R, s.cfg.Now().Add(-s.cfg.IdempotencyLease), maxIntegrityPage)
	if err != nil {
		return Integrity{}, err
	}
	for _, c := range claims {
		out.StaleClaims = append(out.StaleClaims, StaleClaim{KeyFingerprint: IntentRef(c.key), OrderID: c.orderID, ClaimedAt: c.claimedAt})
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+orderColumns+` FROM orders WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit+1)
	if err != nil {
		return Integrity{}, fmt.Errorf("listing orders for integrity: %w", err)
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		o, seq, err := scanOrder(rows)
		if err != nil {
			return Integrity{}, fmt.Errorf("listing orders for integrity: %w", err)
		}
		if len(out.Orders) == limit {
			out.NextCursor = encodeCursor(last)
			break
		}
		last = seq
		out.Orders = append(out.Orders, OrderLineage{OrderID: o.ID, IntentRef: o.intentRef, ExtRef: o.extRef,
			LegacyOrderNo: o.LegacyOrderNo, Status: o.Status, CreatedAt: o.CreatedAt})
	}
	if err := rows.Err(); err != nil {
		return Integrity{}, fmt.Errorf("listing orders for integrity: %w", err)
	}
	return out, nil
}
