package shadow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/config"
	"github.com/gofiber/fiber/v2"
)

// Report sizes.
const (
	// reportFields is how many fields a report lists.
	reportFields = 20
	// reportSamples is how many samples a single-route report carries.
	reportSamples = 5
)

// AdminPath is where Handler expects to be mounted on the admin listener.
const AdminPath = "/admin/shadow"

// Report is one route's shadow results since the gateway started (samples:
// the latest kept in the store, across restarts).
type Report struct {
	Route   string  `json:"route"`
	Percent float64 `json:"percent"`
	// Target is the configured target upstream; empty: the side that did
	// not serve each request.
	Target string `json:"target,omitempty"`
	Noise  bool   `json:"noise"`
	// Results counts sampled requests by result (match, diff, error,
	// dropped, skipped).
	Results map[string]uint64 `json:"results"`
	// Compared is how many exchanges were compared (match + diff).
	Compared uint64 `json:"compared"`
	// NoiseCompared is how many also had a primary-vs-primary comparison.
	NoiseCompared uint64 `json:"noiseCompared"`
	// DiffRate is diff over compared: the share of answers that differ
	// after ignore rules and per-request noise.
	DiffRate float64 `json:"diffRate"`
	// Fields are the top differing fields, real differences first.
	Fields []FieldReport `json:"fields"`
	// ExpiredRules are ignore rules past their date: they no longer apply.
	ExpiredRules []config.IgnoreRule `json:"expiredRules"`
	// Samples are the latest differing exchanges, newest first.
	Samples []Sample `json:"samples,omitempty"`
}

// Routes returns the names of the routes with shadow traffic, in
// configuration order.
func (s *Shadow) Routes() []string {
	out := make([]string, len(s.order))
	for i, rs := range s.order {
		out[i] = rs.name
	}
	return out
}

// Report returns route's report with its latest samples; ErrUnknownRoute
// when the route has no shadow traffic.
func (s *Shadow) Report(route string) (Report, error) {
	return s.report(context.Background(), route, reportSamples)
}

func (s *Shadow) report(ctx context.Context, route string, samples int) (Report, error) {
	rs, ok := s.byName[route]
	if !ok {
		return Report{}, fmt.Errorf("%w: %q", ErrUnknownRoute, route)
	}
	c := rs.cfg.Compare
	results, compared, noiseCompared, fields := rs.stats.snapshot(reportFields, c.RelativeThreshold, c.AbsoluteThreshold)
	r := Report{
		Route: rs.name, Percent: rs.cfg.Percent, Target: rs.cfg.Target, Noise: rs.cfg.Noise,
		Results: map[string]uint64{}, Compared: compared, NoiseCompared: noiseCompared,
		Fields: fields, ExpiredRules: rs.cmp.expired(s.now()),
	}
	for i, n := range results {
		r.Results[Result(i).String()] = n
	}
	if compared > 0 {
		r.DiffRate = float64(results[ResultDiff]) / float64(compared)
	}
	if r.Fields == nil {
		r.Fields = []FieldReport{}
	}
	if r.ExpiredRules == nil {
		r.ExpiredRules = []config.IgnoreRule{}
	}
	if samples > 0 && s.store != nil {
		var err error
		if r.Samples, err = s.store.latest(ctx, rs.name, samples); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Reports returns every shadowed route's report, without samples.
func (s *Shadow) Reports() []Report {
	out := make([]Report, 0, len(s.order))
	for _, rs := range s.order {
		r, _ := s.report(context.Background(), rs.name, 0) // no store read: cannot fail
		out = append(out, r)
	}
	return out
}

// Handler serves GET /admin/shadow (every route's report, no samples) and
// GET /admin/shadow/:route (one route with its samples) as JSON. Mount it on
// the admin listener behind the admin API's authentication, e.g.
// app.Get(AdminPath, h) and app.Get(AdminPath+"/:route", h), or with Use on
// AdminPath. Errors are apierr.Body.
func (s *Shadow) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		rest, ok := strings.CutPrefix(c.Path(), AdminPath)
		rest = strings.Trim(rest, "/")
		if !ok || strings.Contains(rest, "/") {
			return writeErr(c, fiber.StatusNotFound, apierr.CodeNotFound, "no such shadow resource; use "+AdminPath+" or "+AdminPath+"/ROUTE")
		}
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			c.Set(fiber.HeaderAllow, "GET, HEAD")
			return writeErr(c, fiber.StatusMethodNotAllowed, apierr.CodeMethodNotAllowed, "shadow reports are read-only: use GET")
		}
		if rest == "" {
			return c.JSON(s.Reports())
		}
		name, err := url.PathUnescape(rest)
		if err != nil {
			name = rest
		}
		r, err := s.report(c.UserContext(), name, reportSamples)
		switch {
		case errors.Is(err, ErrUnknownRoute):
			return writeErr(c, fiber.StatusNotFound, apierr.CodeNotFound,
				fmt.Sprintf("route %q has no shadow traffic; shadowed routes: %s", name, strings.Join(s.Routes(), ", ")))
		case err != nil:
			return writeErr(c, fiber.StatusInternalServerError, apierr.CodeInternal, "reading shadow samples failed; see the gateway log")
		}
		return c.JSON(r)
	}
}

func writeErr(c *fiber.Ctx, status int, code, msg string) error {
	return c.Status(status).JSON(apierr.Body{Code: code, Message: msg, RequestID: string(c.Response().Header.Peek(apierr.RequestIDHeader))})
}

// RenderReport writes r as text tables for `ficus ctl shadow report`: the
// totals, the top fields (real ones marked), expired ignore rules and the
// samples' differences.
func RenderReport(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	target := r.Target
	if target == "" {
		target = "(other side)"
	}
	fmt.Fprintf(tw, "route %s\tpercent %g\ttarget %s\tnoise %t\n", r.Route, r.Percent, target, r.Noise)
	fmt.Fprintf(tw, "compared %d\tdiff rate %s\tmatch %d\tdiff %d\terror %d\tdropped %d\tskipped %d\n",
		r.Compared, pct(r.DiffRate), r.Results["match"], r.Results["diff"], r.Results["error"], r.Results["dropped"], r.Results["skipped"])
	if len(r.Fields) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "FIELD\tDIFFS\tDIFF RATE\tNOISE RATE\tVERDICT")
		for _, f := range r.Fields {
			verdict := "noise"
			if f.Real {
				verdict = "REAL"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", f.Field, f.Diffs, pct(f.DiffRate), pct(f.NoiseRate), verdict)
		}
	}
	if len(r.ExpiredRules) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "EXPIRED IGNORE RULE\tOWNER\tEXPIRED\tREASON")
		for _, e := range r.ExpiredRules {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Path, e.Owner, e.Expires, e.Reason)
		}
	}
	if len(r.Samples) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "SAMPLE\tREQUEST\tSTATUS\tFIELD\tPRIMARY\tSHADOW")
		for _, s := range r.Samples {
			req := s.Method + " " + s.Path
			if s.Query != "" {
				req += "?" + s.Query
			}
			for i, d := range s.Differences {
				at, id, rq, st := "", "", "", ""
				if i == 0 {
					at, id, rq = s.At.Format(time.RFC3339), s.RequestID, req
					st = fmt.Sprintf("%d/%d", s.PrimaryStatus, s.ShadowStatus)
				}
				fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\n", at, id, rq, st, d.Path, d.Primary, d.Shadow)
			}
		}
	}
	return tw.Flush()
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }
