package outbox

import (
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
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

// PullHandler serves GET /api/v1/events?after=<seq>&limit=<n>&schemaVersion=<v>
// and answers {"events":[...], "next": <seq>}. after defaults to 0 (the
// beginning), limit to DefaultPageSize and may be 1..MaxPageSize;
// schemaVersion defaults to 1 and may be 1..Latest(ups): every event comes
// in the highest version of its type not above it (Convert). Anything else
// is a 400 VALIDATION_FAILED. When the reader still gets a version that ups
// mark deprecated, the answer carries Deprecation (RFC 9745) and Sunset
// (RFC 8594). Errors go through the app's ErrorHandler (apierr.Handler).
func PullHandler(db *sqlitedb.DB, ups ...Upcaster) fiber.Handler {
	latest := int64(Latest(ups))
	return func(c *fiber.Ctx) error {
		after, err := intQuery(c, "after", 0, 0, 1<<62)
		if err != nil {
			return err
		}
		limit, err := intQuery(c, "limit", DefaultPageSize, 1, MaxPageSize)
		if err != nil {
			return err
		}
		want, err := intQuery(c, "schemaVersion", 1, 1, latest)
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
		for i := range events {
			if events[i].Envelope, err = Convert(ups, events[i].Envelope, int(want)); err != nil {
				return err
			}
		}
		if dep, sunset := deprecation(ups, int(want)); !dep.IsZero() {
			c.Set("Deprecation", "@"+strconv.FormatInt(dep.Unix(), 10))
			if !sunset.IsZero() {
				c.Set("Sunset", sunset.UTC().Format(http.TimeFormat))
			}
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
