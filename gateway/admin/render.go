package admin

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// RenderRoutes writes the control plane status (when st is not nil) and
// routes as an aligned table, one line per route: name, canary and pin
// with where each comes from (config or control plane), the route's state
// version, flag, then per backend its upstream, breaker state and
// last-minute request/error rates.
func RenderRoutes(w io.Writer, routes []RouteView, st *Status) error {
	if st != nil {
		conn := "connected"
		if !st.Connected {
			conn = "UNREACHABLE: routing on the last known state, changes refused"
		}
		fmt.Fprintf(w, "control plane: %s, %s, state version %d", st.Store, conn, st.StateVersion)
		if st.Leader != nil {
			if *st.Leader {
				fmt.Fprint(w, ", this replica leads")
			} else {
				fmt.Fprint(w, ", follower")
			}
		}
		fmt.Fprintln(w)
		if f := st.Flags; f != nil && f.Source != "" {
			fmt.Fprintf(w, "flags: %s", f.Source)
			if f.SHA256 != "" {
				fmt.Fprintf(w, " (sha256 %s", short(f.SHA256))
				if !f.LoadedAt.IsZero() {
					fmt.Fprintf(w, ", loaded %s", f.LoadedAt.UTC().Format(time.DateTime))
				}
				fmt.Fprint(w, ")")
			}
			fmt.Fprintf(w, ", %d rejected reload(s)\n", f.ReloadErrors)
			if f.LastError != "" {
				fmt.Fprintf(w, "  LAST RELOAD REJECTED at %s (the previous flags keep serving): %s\n", f.LastErrorAt.UTC().Format(time.DateTime), oneLine(f.LastError))
			}
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tCANARY\tFROM\tPINNED\tFROM\tVERSION\tFLAG\tLEGACY\tNEW")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, pct(r.CanaryPercent), source(r.CanarySource), dash(r.Pinned),
			source(r.PinSource), r.Version, dash(r.Flag), legacy, nw)
	}
	return tw.Flush()
}

func source(s string) string {
	if s == SourceControlPlane {
		return "control plane"
	}
	return dash(s)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
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
	fmt.Fprintln(tw, "ID\tWHEN (UTC)\tVERSION\tWHO\tROUTE\tFIELD\tOLD\tNEW\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.UTC().Format(time.DateTime), e.Version, e.Actor,
			dash(e.Route), e.Field, oneLine(string(e.Old)), oneLine(string(e.New)), oneLine(e.Reason))
	}
	return tw.Flush()
}

// RenderChange writes what a change did.
func RenderChange(w io.Writer, r ChangeResult) error {
	if !r.Changed {
		_, err := fmt.Fprintf(w, "%s %s: no change (already so; nothing audited), state version %d\n", r.Action, r.Route.Name, r.StateVersion)
		return err
	}
	for _, e := range r.Audit {
		if _, err := fmt.Fprintf(w, "%s %s: %s %s -> %s (audit #%d by %s, state version %d)\n", r.Action, e.Route, e.Field, e.Old, e.New, e.ID, e.Actor, e.Version); err != nil {
			return err
		}
	}
	return nil
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
