// Command promcheck runs every PromQL expression of the Ficus dashboards and
// rules against a live Prometheus and reports, per expression, whether it
// returned at least one series. Grafana variables are replaced with real
// values; $route is tried with every route Prometheus knows until one
// answers.
//
// An expression that finds nothing because it reads a metric the gateway does
// not export yet (dashboards.PendingMetrics) is reported as pending and
// counted as skipped; a pending metric that is exported after all fails the
// check until it is removed from the list, so the list cannot hide
// anything for long. Anything else that finds nothing before --timeout is a
// failure, as is a query Prometheus rejects.
//
//	go run ./dashboards/promcheck --prometheus http://127.0.0.1:9090
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/dashboards"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options of one run.
type options struct {
	prometheus   string        // base URL
	job          string        // scrape job that must be up first
	timeout      time.Duration // total budget, waiting included
	poll         time.Duration // pause between rounds
	rateInterval string        // value of $__rate_interval
	rangeDur     string        // value of $__range
	routes       []string      // values tried for $route; empty: discover
	pending      []string      // metrics not exported yet; nil: dashboards.PendingMetrics()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("promcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var routes string
	fs.StringVar(&o.prometheus, "prometheus", "", "base URL of the Prometheus to query (required)")
	fs.StringVar(&o.job, "job", "ficus-gateway", "scrape job whose target must be up before querying")
	fs.DurationVar(&o.timeout, "timeout", 90*time.Second, "total time allowed, waiting for samples included")
	fs.DurationVar(&o.poll, "poll", 2*time.Second, "pause between query rounds while expressions still return nothing")
	fs.StringVar(&o.rateInterval, "rate-interval", "30s", "value substituted for $__rate_interval and $__interval")
	fs.StringVar(&o.rangeDur, "range", "5m", "value substituted for $__range")
	fs.StringVar(&routes, "routes", "", "comma-separated values tried for $route (default: every route label Prometheus has)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.prometheus == "" {
		fmt.Fprintln(stderr, "promcheck: --prometheus is required")
		return 2
	}
	if routes != "" {
		o.routes = strings.Split(routes, ",")
	}
	exprs, err := dashboards.Expressions(dashboards.Files())
	if err != nil {
		fmt.Fprintf(stderr, "promcheck: reading the dashboards and rules: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c := &client{base: strings.TrimSuffix(o.prometheus, "/"), http: &http.Client{Timeout: 10 * time.Second}}
	res, err := check(ctx, c, o, exprs)
	if err != nil {
		fmt.Fprintf(stderr, "promcheck: %v\n", err)
		return 1
	}
	var passed, failed, skipped int
	for _, r := range res {
		switch r.status {
		case statusPass:
			passed++
		case statusPending:
			skipped++
		default:
			failed++
		}
		fmt.Fprintln(stdout, r.line())
	}
	fmt.Fprintf(stdout, "promcheck: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if skipped > 0 {
		fmt.Fprintln(stdout, "(skipped = pending: the metric is not exported yet; see dashboards.PendingMetrics)")
	}
	if failed > 0 {
		return 1
	}
	return 0
}

type status string

const (
	statusPass    status = "PASS"
	statusPending status = "PENDING"
	statusFail    status = "FAIL"
)

// result of one expression.
type result struct {
	expr   dashboards.Expr
	status status
	detail string
	query  string
	// final: another round cannot change the outcome (a rejected query, a
	// variable without a value).
	final bool
}

func (r result) line() string {
	s := fmt.Sprintf("%-7s %s: %s", r.status, r.expr, r.detail)
	if r.status == statusFail && r.query != "" {
		s += "\n        query: " + strings.ReplaceAll(r.query, "\n", " ")
	}
	return s
}

// check waits for the job to be scraped, then queries every expression in
// rounds until each has returned a series, is known to be pending, or the
// context ends.
func check(ctx context.Context, c *client, o options, exprs []dashboards.Expr) ([]result, error) {
	if err := waitUp(ctx, c, o); err != nil {
		return nil, err
	}
	pending := map[string]bool{}
	names := o.pending
	if names == nil {
		names = dashboards.PendingMetrics()
	}
	for _, p := range names {
		pending[p] = true
	}
	results := make([]result, len(exprs))
	done := make([]bool, len(exprs))
	for round := 0; ; round++ {
		present, err := c.metricNames(ctx)
		if err != nil {
			if round > 0 && ctx.Err() != nil {
				return results, nil
			}
			return nil, err
		}
		routes := o.routes
		if len(routes) == 0 {
			if routes, err = c.labelValues(ctx, "route", "ficus_requests_total"); err != nil {
				if round > 0 && ctx.Err() != nil {
					return results, nil
				}
				return nil, err
			}
		}
		open := 0
		for i, e := range exprs {
			if done[i] {
				continue
			}
			r := evaluate(ctx, c, o, e, exprs, routes, present, pending)
			if round > 0 && ctx.Err() != nil {
				return results, nil // keep the last complete answer
			}
			results[i] = r
			switch {
			case r.status == statusPass, r.final:
				done[i] = true
			case r.status == statusPending:
				// settled unless the metric appears; checked again next round
				// only if others are still open
			default:
				open++
			}
		}
		if open == 0 {
			return results, nil
		}
		select {
		case <-ctx.Done():
			return results, nil
		case <-time.After(o.poll):
		}
	}
}

func evaluate(ctx context.Context, c *client, o options, e dashboards.Expr, all []dashboards.Expr,
	routes []string, present, pending map[string]bool) result {
	// The fleet variables at their default, All (allValue .*).
	for _, m := range dashboards.SourceMetrics(dashboards.MetricNames(e.PromQL), all) {
		if pending[m] && present[m] {
			return result{expr: e, status: statusFail, final: true,
				detail: fmt.Sprintf("%s is exported now: remove it from dashboards.PendingMetrics", m)}
		}
	}
	vars := map[string]string{"__rate_interval": o.rateInterval, "__interval": o.rateInterval, "__range": o.rangeDur,
		"environment": ".*", "job": ".*", "instance": ".*"}
	tries := []string{""}
	if slices.Contains(dashboards.Variables(e.PromQL), "route") {
		tries = routes
		if len(tries) == 0 {
			return result{expr: e, status: statusFail, detail: "uses $route but Prometheus has no ficus_requests_total series to take routes from"}
		}
	}
	var last string
	for _, route := range tries {
		vars["route"] = route
		q := dashboards.Substitute(e.PromQL, vars)
		if left := dashboards.Variables(q); len(left) > 0 {
			return result{expr: e, status: statusFail, detail: fmt.Sprintf("no value for Grafana variable(s) %v", left), query: q, final: true}
		}
		last = q
		n, err := c.query(ctx, q)
		var rej *rejectedError
		if errors.As(err, &rej) {
			return result{expr: e, status: statusFail, detail: "rejected by Prometheus: " + rej.msg, query: q, final: true}
		}
		if err != nil {
			return result{expr: e, status: statusFail, detail: err.Error(), query: q}
		}
		if n > 0 {
			d := fmt.Sprintf("%d series", n)
			if route != "" {
				d += " (route=" + route + ")"
			}
			return result{expr: e, status: statusPass, detail: d}
		}
	}
	var missing, missingPending []string
	for _, m := range dashboards.SourceMetrics(dashboards.MetricNames(last), all) {
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suf); ok && pending[b] {
				base = b
			}
		}
		if present[m] {
			continue
		}
		if pending[base] {
			missingPending = append(missingPending, base)
		} else {
			missing = append(missing, m)
		}
	}
	switch {
	case len(missing) > 0:
		return result{expr: e, status: statusFail, detail: fmt.Sprintf("no series: metric not exported by the target: %s", strings.Join(missing, ", ")), query: last}
	case len(missingPending) > 0:
		return result{expr: e, status: statusPending, detail: "pending: metric not yet exported: " + strings.Join(missingPending, ", ")}
	}
	return result{expr: e, status: statusFail, detail: "no series (the metrics exist; the traffic did not produce what this expression selects)", query: last}
}

// waitUp polls until the job's target has been scraped successfully.
func waitUp(ctx context.Context, c *client, o options) error {
	q := fmt.Sprintf(`up{job=%q} == 1`, o.job)
	var lastErr error
	for {
		n, err := c.query(ctx, q)
		if err == nil && n > 0 {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("job %q was never scraped successfully: %w", o.job, lastErr)
			}
			return fmt.Errorf("job %q was never scraped successfully (is the target up? see %s/targets)", o.job, c.base)
		case <-time.After(o.poll / 2):
		}
	}
}

// client speaks Prometheus' HTTP API.
type client struct {
	base string
	http *http.Client
}

// rejectedError is a query Prometheus refused (bad_data: a syntax error).
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return "rejected: " + e.msg }

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (c *client) get(ctx context.Context, path string, params url.Values) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	var ar apiResponse
	if err := json.Unmarshal(b, &ar); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d, not a Prometheus API answer: %.200s", path, resp.StatusCode, b)
	}
	if ar.Status != "success" {
		if ar.ErrorType == "bad_data" {
			return nil, &rejectedError{msg: ar.Error}
		}
		return nil, fmt.Errorf("%s: %s: %s", path, ar.ErrorType, ar.Error)
	}
	return ar.Data, nil
}

// query runs an instant query and returns how many series (or 1 for a
// scalar) it answered.
func (c *client) query(ctx context.Context, q string) (int, error) {
	data, err := c.get(ctx, "/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return 0, err
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return 0, err
	}
	switch d.ResultType {
	case "vector", "matrix":
		var rs []json.RawMessage
		if err := json.Unmarshal(d.Result, &rs); err != nil {
			return 0, err
		}
		return len(rs), nil
	case "scalar", "string":
		return 1, nil
	}
	return 0, fmt.Errorf("unknown result type %q", d.ResultType)
}

func (c *client) labelValues(ctx context.Context, label, match string) ([]string, error) {
	p := url.Values{}
	if match != "" {
		p.Set("match[]", match)
	}
	data, err := c.get(ctx, "/api/v1/label/"+label+"/values", p)
	if err != nil {
		return nil, err
	}
	var vs []string
	return vs, json.Unmarshal(data, &vs)
}

func (c *client) metricNames(ctx context.Context) (map[string]bool, error) {
	vs, err := c.labelValues(ctx, "__name__", "")
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m, nil
}
