package retire

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// Fetch reads the report from a gateway's admin API at baseURL (e.g.
// http://127.0.0.1:8090) with a bearer token.
func Fetch(ctx context.Context, hc *http.Client, baseURL, token string, window time.Duration) (Report, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimRight(baseURL, "/") + "/admin/retire"
	if window > 0 {
		u += "?window=" + url.QueryEscape(window.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Report{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return Report{}, fmt.Errorf("calling the admin API at %s: %w (is the gateway running?)", baseURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return Report{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(body, &e)
		return Report{}, fmt.Errorf("admin API answered %d %s: %s", resp.StatusCode, e.Code, e.Message)
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return Report{}, fmt.Errorf("reading the retirement report: %w", err)
	}
	return rep, nil
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
