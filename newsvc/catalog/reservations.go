package catalog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// Reservations are stock adjustments with reason order-reserved; their
// reference names what holds them (an order id). A reservation is open while
// the units reserved under its (reference, SKU) exceed the units released
// (reason order-released) under the same pair.
const (
	reasonOrderReserved = "order-reserved"
	reasonOrderReleased = "order-released"
	// ReleasedReason is details.reason of the 409 CONFLICT that refuses a
	// reservation under a reference released by POST
	// /api/v1/stock-reservations/{reference}/release.
	ReleasedReason = "reservation-reference-released"
)

// reservationsMigration adds what releasing by reference needs: an index to
// find a reference's adjustments, and the tombstones of released references
// with the answer their release gave (replayed to a repeated release).
var reservationsMigration = sqlitedb.Migration{
	Name: "catalog: stock reservations released by reference",
	SQL: `CREATE INDEX stock_adjustments_reference ON stock_adjustments(reference, sku);
CREATE TABLE released_references (
	reference   TEXT PRIMARY KEY,
	body        BLOB NOT NULL,
	released_at TEXT NOT NULL
);`,
}

// ReservationRelease is the answer to a release by reference, and what a
// repeated release replays.
type ReservationRelease struct {
	Reference string `json:"reference"`
	// Released are the adjustments that gave the open reservations back,
	// one per SKU; empty when nothing was held.
	Released   []StockAdjustment `json:"released"`
	ReleasedAt time.Time         `json:"releasedAt"`
}

// Reservation is one open reservation: units of a SKU held under a
// reference.
type Reservation struct {
	Reference  string    `json:"reference"`
	SKU        string    `json:"sku"`
	Quantity   int64     `json:"quantity"`
	ReservedAt time.Time `json:"reservedAt"`
	AgeSeconds int64     `json:"ageSeconds"`
}

// refuseReleased answers 409 CONFLICT when reference was released: a
// reservation that arrives after its holder gave up (sent, timed out,
// landed late) must not hold stock that nobody will release.
func refuseReleased(ctx context.Context, tx *sql.Tx, reference string) error {
	if reference == "" {
		return nil
	}
	var at string
	err := tx.QueryRowContext(ctx, `SELECT released_at FROM released_references WHERE reference = ?`, reference).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading released reference %s: %w", reference, err)
	}
	return apierr.New(apierr.CodeConflict, "reservations under %q were released at %s; it takes no new ones", reference, at).
		WithDetails(map[string]string{"reason": ReleasedReason, "reference": reference})
}

// releaseReference releases every open reservation under reference, once:
// each SKU's open units go back in one order-released adjustment, and a
// tombstone makes later reservations under reference fail. A repeated call
// replays the first answer and changes nothing.
func (s *Service) releaseReference(ctx context.Context, m reqMeta, reference string) (storedResponse, error) {
	var out storedResponse
	err := s.write(ctx, m, func(tx *sql.Tx) error {
		var body []byte
		err := tx.QueryRowContext(ctx, `SELECT body FROM released_references WHERE reference = ?`, reference).Scan(&body)
		if err == nil {
			out = storedResponse{status: fiber.StatusOK, body: body, replay: true}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reading released reference %s: %w", reference, err)
		}
		now := s.now().UTC()
		open, err := openUnits(ctx, tx, reference)
		if err != nil {
			return err
		}
		rel := ReservationRelease{Reference: reference, Released: []StockAdjustment{}, ReleasedAt: now}
		for _, o := range open {
			adj, err := s.applyAdjustment(ctx, tx, m, o.sku, adjustment{Delta: o.units, Reason: reasonOrderReleased, Reference: reference}, now)
			if err != nil {
				return fmt.Errorf("releasing %d of %s held by %s: %w", o.units, o.sku, reference, err)
			}
			rel.Released = append(rel.Released, adj)
		}
		if body, err = json.Marshal(rel); err != nil {
			return fmt.Errorf("encoding release of %s: %w", reference, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO released_references (reference, body, released_at) VALUES (?, ?, ?)`,
			reference, body, now.Format(tsLayout)); err != nil {
			return fmt.Errorf("recording release of %s: %w", reference, err)
		}
		out = storedResponse{status: fiber.StatusOK, body: body}
		if !m.shadow {
			for _, a := range rel.Released {
				s.log.Info("reservation released by reference", "reference", reference, "sku", a.SKU,
					"quantity", a.Delta, "request_id", m.requestID)
			}
		}
		return nil
	})
	return out, err
}

type openSku struct {
	sku   string
	units int64
}

// openSQL is the open units per (reference, sku) among reservations and
// releases; reservations have negative deltas.
const openSQL = `SELECT reference, sku,
	SUM(CASE WHEN reason = 'order-reserved' THEN -delta ELSE 0 END) -
	SUM(CASE WHEN reason = 'order-released' THEN delta ELSE 0 END) AS open,
	MIN(CASE WHEN reason = 'order-reserved' THEN created_at END) AS first
	FROM stock_adjustments`

func openUnits(ctx context.Context, tx *sql.Tx, reference string) ([]openSku, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sku, open FROM (`+openSQL+`
		WHERE reference = ? AND reason IN ('order-reserved', 'order-released') GROUP BY reference, sku)
		WHERE open > 0 ORDER BY sku`, reference)
	if err != nil {
		return nil, fmt.Errorf("reading reservations of %s: %w", reference, err)
	}
	defer rows.Close()
	var out []openSku
	for rows.Next() {
		var o openSku
		if err := rows.Scan(&o.sku, &o.units); err != nil {
			return nil, fmt.Errorf("reading reservations of %s: %w", reference, err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// openReservations returns up to limit open reservations after the
// (reference, sku) position, in that order (keyset pagination).
func openReservations(ctx context.Context, q querier, afterRef, afterSku string, limit int, now time.Time) ([]Reservation, error) {
	rows, err := q.QueryContext(ctx, `SELECT reference, sku, open, first FROM (`+openSQL+`
		WHERE reason IN ('order-reserved', 'order-released') AND (reference > ? OR (reference = ? AND sku > ?))
		GROUP BY reference, sku) WHERE open > 0 ORDER BY reference, sku LIMIT ?`, afterRef, afterRef, afterSku, limit)
	if err != nil {
		return nil, fmt.Errorf("listing open reservations: %w", err)
	}
	defer rows.Close()
	out := make([]Reservation, 0, limit)
	for rows.Next() {
		var r Reservation
		var first sql.NullString
		if err := rows.Scan(&r.Reference, &r.SKU, &r.Quantity, &first); err != nil {
			return nil, fmt.Errorf("listing open reservations: %w", err)
		}
		if first.Valid {
			t, err := time.Parse(time.RFC3339Nano, first.String)
			if err != nil {
				return nil, fmt.Errorf("reservation %s/%s has a bad created_at %q: %w", r.Reference, r.SKU, first.String, err)
			}
			r.ReservedAt = t.UTC()
			r.AgeSeconds = max(0, int64(now.Sub(r.ReservedAt)/time.Second))
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// referenceParam reads and checks {reference}: 1-128 bytes of UTF-8 after
// percent-decoding.
func referenceParam(c *fiber.Ctx) (string, error) {
	ref, err := url.PathUnescape(c.Params("reference"))
	if err != nil || ref == "" || len(ref) > maxReferenceLen || !utf8.ValidString(ref) {
		return "", apierr.New(apierr.CodeValidation, "reference must be 1-128 bytes of UTF-8, percent-encoded in the path").
			WithDetails(problem("reference", "invalid"))
	}
	return strings.Clone(ref), nil
}

func (s *Service) postReservationRelease(c *fiber.Ctx) error {
	ref, err := referenceParam(c)
	if err != nil {
		return err
	}
	if len(c.Body()) > 0 { // optional body: {} (room for options later)
		var empty struct{}
		if err := decodeJSON(c, &empty); err != nil {
			return err
		}
	}
	res, err := s.releaseReference(c.UserContext(), meta(c), ref)
	if err != nil {
		return err
	}
	if res.replay {
		c.Set("Idempotent-Replayed", "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(res.status).Send(res.body)
}

// reservationCursor prefixes reservation cursors (a different format from
// product cursors, so one cannot be passed for the other).
const reservationCursor = "r1"

func encodeReservationCursor(ref, sku string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(reservationCursor + "\n" + sku + "\n" + ref))
}

func decodeReservationCursor(raw string) (ref, sku string, err error) {
	bad := apierr.New(apierr.CodeValidation, "cursor is not one this service issued; start again without it").
		WithDetails(problem("cursor", "invalid"))
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", "", bad
	}
	parts := strings.SplitN(string(b), "\n", 3)
	if len(parts) != 3 || parts[0] != reservationCursor || !api.ValidSKU(parts[1]) {
		return "", "", bad
	}
	return parts[2], parts[1], nil
}

func (s *Service) listReservations(c *fiber.Ctx) error {
	q, err := api.ParseListQuery(c.Query("limit"), "", "")
	if err != nil {
		return apierr.Contract(err)
	}
	var afterRef, afterSku string
	if raw := c.Query("cursor"); raw != "" {
		if afterRef, afterSku, err = decodeReservationCursor(raw); err != nil {
			return err
		}
	}
	items, err := openReservations(c.UserContext(), s.db.R, afterRef, afterSku, q.Limit+1, s.now().UTC())
	if err != nil {
		return err
	}
	var next string
	if len(items) > q.Limit {
		items = items[:q.Limit]
		next = encodeReservationCursor(items[q.Limit-1].Reference, items[q.Limit-1].SKU)
	}
	return c.JSON(api.Page[Reservation]{Items: items, NextCursor: next})
}
