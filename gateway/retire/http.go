package retire

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Handler serves the report as JSON: GET ...?window=168h (optional, Go
// duration). Mount it behind the admin API's authentication.
func (t *Tracker) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var window time.Duration
		if w := c.Query("window"); w != "" {
			d, err := time.ParseDuration(w)
			if err != nil || d <= 0 {
				return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{
					"code": "INVALID_WINDOW", "message": "window must be a positive duration such as 72h or 30m",
					"requestId": string(c.Response().Header.Peek("X-Request-Id")),
				})
			}
			window = d
		}
		return c.JSON(t.Report(window))
	}
}

// Render writes the report as a table: one line per route, then the
// callers of each route still in use.
func Render(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "Legacy routes over the last %s (tracking since %s)\n\n", rep.Window, rep.TrackingSince.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tSTATUS\tLAST LEGACY HIT\tCALLERS")
	for _, r := range rep.Routes {
		last := "never"
		if r.LastLegacyHit != nil {
			last = r.LastLegacyHit.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", r.Route, r.Status, last, len(r.Callers))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Routes {
		if r.Status != StatusInUse || len(r.Callers) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s is still called by:\n", r.Route)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CALLER\tHITS\tLAST SEEN")
		for _, c := range r.Callers {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", c.ID, c.Hits, c.LastSeen.Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
