package admin

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// RenderRoutes writes routes as an aligned table, one line per route:
// name, canary, pin, flag, then per backend its upstream, breaker state and
// last-minute request/error rates.
func RenderRoutes(w io.Writer, routes []RouteView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tCANARY\tPINNED\tFLAG\tLEGACY\tNEW")
	for _, r := range routes {
		var legacy, nw string = "-", "-"
		for _, b := range r.Backends {
			cell := backendCell(b)
			if b.Backend == "new" {
				nw = cell
			} else {
				legacy = cell
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, pct(r.CanaryPercent), dash(r.Pinned), dash(r.Flag), legacy, nw)
	}
	return tw.Flush()
}

// backendCell: "catalog [closed] 12.0 rps, 0.10 err/s".
func backendCell(b BackendView) string {
	s := b.Upstream
	if b.Breaker != "" {
		s += " [" + b.Breaker + "]"
	}
	return fmt.Sprintf("%s %.1f rps, %.2f err/s", s, b.RequestsPerSec, b.ErrorsPerSec)
}

// RenderAudit writes audit entries as an aligned table, times in UTC.
func RenderAudit(w io.Writer, entries []AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN (UTC)\tWHO\tACTION\tROUTE\tFROM\tTO\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.UTC().Format(time.DateTime), e.Actor, e.Action,
			e.Route, e.From, e.To, oneLine(e.Reason))
	}
	return tw.Flush()
}

// RenderChange writes one line confirming a change.
func RenderChange(w io.Writer, r ChangeResult) error {
	_, err := fmt.Fprintf(w, "%s %s: %s -> %s (audit #%d by %s)\n", r.Audit.Action, r.Audit.Route, r.Audit.From, r.Audit.To, r.Audit.ID, r.Audit.Actor)
	return err
}

func pct(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) + "%" }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a reason from breaking the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
