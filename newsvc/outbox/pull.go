package outbox

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/apierr"
)

// DefaultPageSize is the number of events PullHandler returns when the
// request gives no limit.
const DefaultPageSize = 100

// Page is the body PullHandler answers with.
type Page struct {
	// Events are in Seq order; empty (never null) when the consumer is
	// caught up.
	Events []Stored `json:"events"`
	// Next is the value to pass as after on the following request: the Seq
	// of the last event returned, or the request's after when none was.
	Next int64 `json:"next"`
}

// PullHandler serves GET /api/v1/events?after=<seq>&limit=<n> and answers
// {"events":[...], "next": <seq>}. after defaults to 0 (the beginning),
// limit to DefaultPageSize and may be 1..MaxPageSize; anything else is a
// 400 VALIDATION_FAILED. Errors go through the app's ErrorHandler
// (apierr.Handler).
func PullHandler(db *sqlitedb.DB) fiber.Handler {
	return func(c *fiber.Ctx) error {
		after, err := intQuery(c, "after", 0, 0, 1<<62)
		if err != nil {
			return err
		}
		limit, err := intQuery(c, "limit", DefaultPageSize, 1, MaxPageSize)
		if err != nil {
			return err
		}
		events, err := Events(c.UserContext(), db.R, after, int(limit))
		if err != nil {
			return err
		}
		next := after
		if n := len(events); n > 0 {
			next = events[n-1].Seq
		}
		return c.JSON(Page{Events: events, Next: next})
	}
}

func intQuery(c *fiber.Ctx, name string, def, lo, hi int64) (int64, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, apierr.New(apierr.CodeValidation, "query parameter %s must be an integer from %d to %d", name, lo, hi).
			WithDetails(map[string]string{"field": name})
	}
	return v, nil
}
