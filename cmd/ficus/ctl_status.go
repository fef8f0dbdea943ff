package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ficus-gw/ficus/gateway/admin"
)

// Exit statuses of `ficus ctl status` (documented in docs/operations.md).
const (
	statusOK       = 0 // every replica ready and agreeing, control plane connected, breakers closed, flags served as written
	statusFailed   = 1 // the command itself failed (no answer from the first replica, bad token)
	statusDegraded = 3 // something needs attention: see the problems listed
)

// fleetStatus is `ficus ctl status -o json|yaml`.
type fleetStatus struct {
	// Healthy is false when Problems is not empty (exit status 3).
	Healthy  bool            `json:"healthy"`
	Problems []string        `json:"problems"`
	Replicas []replicaStatus `json:"replicas"`
	Routes   []routeSummary  `json:"routes"`
}

type replicaStatus struct {
	Admin  string        `json:"admin"`
	Ready  bool          `json:"ready"`
	Error  string        `json:"error,omitempty"`
	Status *admin.Status `json:"status,omitempty"`
}

type routeSummary struct {
	Name          string            `json:"name"`
	CanaryPercent float64           `json:"canaryPercent"`
	Pinned        string            `json:"pinned,omitempty"`
	Version       int64             `json:"version"`
	Breakers      map[string]string `json:"breakers"`
	Phase         string            `json:"phase"` // facade, legacy, canary, new, pinned
}

func init() {
	ctlCommands["status"] = ctlCommand{
		synopsis: "status [ADMIN_URL ...] [-o table|json|yaml] [--watch]",
		flags:    func(fs *flag.FlagSet) { addOutputFlag(fs); addWatchFlag(fs) },
		run:      runStatus,
	}
}

func runStatus(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
	format, err := outputFormat(fs)
	if err != nil {
		return err
	}
	urls := append([]string{c.adminURL}, args...)
	if len(args) > 0 {
		urls = args
	}
	collect := func(ctx context.Context) (fleetStatus, error) {
		return collectStatus(ctx, urls, c.token, c.http)
	}
	if watching(fs) {
		return watch(ctx, fs, c.timeout, env.stdout, env.stderr, format, func(ctx context.Context, w io.Writer) error {
			fst, err := collect(ctx)
			if err != nil {
				return err
			}
			return writeOutput(w, format, fst, func(w io.Writer) error { return renderStatus(w, fst) })
		})
	}
	fst, err := collect(ctx)
	if err != nil {
		return err
	}
	if err := writeOutput(env.stdout, format, fst, func(w io.Writer) error { return renderStatus(w, fst) }); err != nil {
		return err
	}
	if !fst.Healthy {
		return exitCodeError{code: statusDegraded}
	}
	return nil
}

// collectStatus asks every replica; the routes come from the first. An
// error only when the first replica cannot be read at all.
func collectStatus(ctx context.Context, urls []string, token string, hc *http.Client) (fleetStatus, error) {
	fst := fleetStatus{Problems: []string{}}
	var routes []admin.RouteView
	for i, u := range urls {
		rs := replicaStatus{Admin: u}
		cl, err := admin.NewClient(u, token, hc)
		if err != nil {
			return fst, usageError{err}
		}
		st, err := cl.Status(ctx)
		if err != nil {
			if i == 0 {
				return fst, err
			}
			rs.Error = err.Error()
			fst.Problems = append(fst.Problems, fmt.Sprintf("replica %s: %v", u, err))
			fst.Replicas = append(fst.Replicas, rs)
			continue
		}
		rs.Status = &st
		rs.Ready = ready(ctx, hc, u)
		if !rs.Ready {
			fst.Problems = append(fst.Problems, fmt.Sprintf("replica %s: not ready (/readyz)", u))
		}
		if !st.Connected {
			fst.Problems = append(fst.Problems, fmt.Sprintf("replica %s: control plane (%s) unreachable; routing on the last known state", u, st.Store))
		}
		if f := st.Flags; f != nil && f.LastError != "" {
			fst.Problems = append(fst.Problems, fmt.Sprintf("replica %s: flag file rejected (%s); the previous flags keep serving", u, f.LastError))
		}
		if i == 0 {
			if routes, err = cl.Routes(ctx); err != nil {
				return fst, err
			}
		}
		fst.Replicas = append(fst.Replicas, rs)
	}
	versions := map[int64]bool{}
	for _, r := range fst.Replicas {
		if r.Status != nil {
			versions[r.Status.StateVersion] = true
		}
	}
	if len(versions) > 1 {
		fst.Problems = append(fst.Problems, fmt.Sprintf("replicas route on %d different state versions (they converge within a second; persisting means one cannot reach the control plane)", len(versions)))
	}
	open := map[string]bool{}
	for _, r := range routes {
		s := routeSummary{Name: r.Name, CanaryPercent: r.CanaryPercent, Pinned: r.Pinned, Version: r.Version, Breakers: map[string]string{}}
		hasNew := false
		for _, b := range r.Backends {
			s.Breakers[b.Backend] = b.Breaker
			if b.Backend == "new" {
				hasNew = true
			}
			if b.Breaker != "" && b.Breaker != "closed" && !open[b.Upstream] {
				open[b.Upstream] = true
				fst.Problems = append(fst.Problems, fmt.Sprintf("upstream %s: breaker %s", b.Upstream, b.Breaker))
			}
		}
		switch {
		case !hasNew:
			s.Phase = "facade"
		case r.Pinned != "":
			s.Phase = "pinned"
		case r.CanaryPercent >= 100:
			s.Phase = "new"
		case r.CanaryPercent > 0:
			s.Phase = "canary"
		default:
			s.Phase = "legacy"
		}
		fst.Routes = append(fst.Routes, s)
	}
	sort.Strings(fst.Problems)
	fst.Problems = slices.Compact(fst.Problems)
	fst.Healthy = len(fst.Problems) == 0
	return fst, nil
}

// ready asks the replica's /readyz (open, no token).
func ready(ctx context.Context, hc *http.Client, base string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/readyz", nil)
	if err != nil {
		return false
	}
	res, err := hc.Do(req)
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func renderStatus(w io.Writer, fst fleetStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	verdict := "healthy"
	if !fst.Healthy {
		verdict = fmt.Sprintf("DEGRADED (%d problem(s))", len(fst.Problems))
	}
	fmt.Fprintf(tw, "fleet: %s\n", verdict)
	for _, p := range fst.Problems {
		fmt.Fprintf(tw, "  ! %s\n", p)
	}
	fmt.Fprintln(tw, "\nREPLICA\tREADY\tCONTROL PLANE\tVERSION\tLEADER\tFLAGS")
	for _, r := range fst.Replicas {
		if r.Status == nil {
			fmt.Fprintf(tw, "%s\tunreachable\t-\t-\t-\t-\n", r.Admin)
			continue
		}
		st := r.Status
		cp := st.Store + " connected"
		if !st.Connected {
			cp = st.Store + " UNREACHABLE"
		}
		leader := "-"
		if st.Leader != nil {
			leader = map[bool]string{true: "yes", false: "no"}[*st.Leader]
		}
		flags := "-"
		if st.Flags != nil {
			flags = fmt.Sprintf("%d rejected", st.Flags.ReloadErrors)
			if st.Flags.LastError != "" {
				flags += " (last REJECTED)"
			}
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%s\t%s\n", r.Admin, r.Ready, cp, st.StateVersion, leader, flags)
	}
	fmt.Fprintln(tw, "\nROUTE\tPHASE\tCANARY\tPINNED\tBREAKERS (legacy/new)")
	for _, r := range fst.Routes {
		br := r.Breakers["legacy"]
		if n, ok := r.Breakers["new"]; ok {
			br += "/" + n
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Phase, strings.TrimSuffix(fmt.Sprintf("%g", r.CanaryPercent), ".0")+"%", dashIfEmpty(r.Pinned), br)
	}
	return tw.Flush()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
