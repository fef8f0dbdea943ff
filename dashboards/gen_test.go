package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The dashboards are written as Go values here and committed as JSON: the
// test fails when the JSON in grafana/ is not what this file generates, and
// `go test ./dashboards -run TestDashboardsUpToDate -update` rewrites it.
// Editing the JSON by hand (or exporting from Grafana) and forgetting this
// file is caught, and so is the reverse.
var update = flag.Bool("update", false, "rewrite grafana/*.json from the generator")

// schemaVersion is the Grafana dashboard schema the JSON is written in
// (Grafana 12.x writes 41).
const schemaVersion = 41

// sloBudget is the error budget of the 99.5% availability SLO the alert
// rules use (prometheus/rules/ficus.alerts.yml).
const sloBudget = "0.005"

type obj = map[string]any

func promDS() obj { return obj{"type": "prometheus", "uid": "${datasource}"} }

func TestDashboardsUpToDate(t *testing.T) {
	for name, d := range map[string]obj{
		"migration-overview.json": migrationOverview(),
		"route-detail.json":       routeDetail(),
	} {
		t.Run(name, func(t *testing.T) {
			buf := encodeDashboard(t, d)
			path := filepath.Join("grafana", name)
			if *update {
				if err := os.WriteFile(path, buf, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run: go test ./dashboards -run TestDashboardsUpToDate -update)", err)
			}
			if !bytes.Equal(got, buf) {
				t.Errorf("%s differs from the generator in gen_test.go; change the generator and run: go test ./dashboards -run TestDashboardsUpToDate -update", path)
			}
		})
	}
}

// encodeDashboard is a dashboard's committed JSON: two-space indent, no
// HTML escaping (PromQL's < and > stay readable), a final newline.
func encodeDashboard(t *testing.T, d any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ---- building blocks ----

// layout places panels left to right, wrapping at Grafana's 24 columns.
type layout struct {
	x, y, rowH int
	id         int
	panels     []any
}

func (l *layout) row(title string) {
	if l.x > 0 {
		l.y += l.rowH
		l.x, l.rowH = 0, 0
	}
	l.id++
	l.panels = append(l.panels, obj{
		"id": l.id, "type": "row", "title": title, "collapsed": false, "panels": []any{},
		"gridPos": obj{"h": 1, "w": 24, "x": 0, "y": l.y},
	})
	l.y++
}

func (l *layout) add(w, h int, p obj) {
	if l.x+w > 24 {
		l.y += l.rowH
		l.x, l.rowH = 0, 0
	}
	l.id++
	p["id"] = l.id
	p["gridPos"] = obj{"h": h, "w": w, "x": l.x, "y": l.y}
	l.x += w
	if h > l.rowH {
		l.rowH = h
	}
	l.panels = append(l.panels, p)
}

// q is a range query; legend "" lets Grafana name the series. Every
// ficus_* selector in expr is scoped to the fleet variables (see scope).
func q(ref, expr, legend string) obj {
	t := obj{"refId": ref, "datasource": promDS(), "expr": scope(expr), "range": true, "instant": false, "editorMode": "code"}
	if legend != "" {
		t["legendFormat"] = legend
	}
	return t
}

// instant is an instant query (tables, bar gauges, stats over the range).
func instant(ref, expr, legend string) obj {
	t := q(ref, expr, legend)
	t["range"], t["instant"] = false, true
	t["format"] = "table"
	return t
}

func thresholds(steps ...any) obj {
	// steps: color, value, color, value, ..., color
	out := []any{obj{"color": steps[0], "value": nil}}
	for i := 1; i+1 < len(steps); i += 2 {
		out = append(out, obj{"color": steps[i+1], "value": steps[i]})
	}
	return obj{"mode": "absolute", "steps": out}
}

func green() obj { return thresholds("green") }

func timeseries(title, desc, unit string, th obj, targets ...obj) obj {
	custom := obj{
		"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
		"spanNulls": false, "axisPlacement": "auto", "lineInterpolation": "linear",
		"stacking":        obj{"mode": "none", "group": "A"},
		"thresholdsStyle": obj{"mode": "off"},
	}
	if th == nil {
		th = green()
	} else {
		custom["thresholdsStyle"] = obj{"mode": "dashed"}
	}
	return obj{
		"type": "timeseries", "title": title, "description": desc, "datasource": promDS(),
		"targets": targets,
		"fieldConfig": obj{
			"defaults":  obj{"unit": unit, "min": 0, "custom": custom, "thresholds": th, "color": obj{"mode": "palette-classic"}},
			"overrides": []any{},
		},
		"options": obj{
			"legend":  obj{"displayMode": "table", "placement": "right", "showLegend": true, "calcs": []any{"lastNotNull", "max"}},
			"tooltip": obj{"mode": "multi", "sort": "desc"},
		},
	}
}

func stacked(p obj) obj {
	c := p["fieldConfig"].(obj)["defaults"].(obj)["custom"].(obj)
	c["stacking"] = obj{"mode": "normal", "group": "A"}
	c["fillOpacity"] = 60
	return p
}

func withMax(p obj, max float64) obj {
	p["fieldConfig"].(obj)["defaults"].(obj)["max"] = max
	return p
}

// rightAxis puts the series of query ref on a right-hand axis in unit.
func rightAxis(ref, unit string, p obj) obj {
	fc := p["fieldConfig"].(obj)
	fc["overrides"] = []any{obj{
		"matcher": obj{"id": "byFrameRefID", "options": ref},
		"properties": []any{
			obj{"id": "unit", "value": unit},
			obj{"id": "custom.axisPlacement", "value": "right"},
		},
	}}
	return p
}

func stat(title, desc, unit string, th obj, targets ...obj) obj {
	if th == nil {
		th = green()
	}
	return obj{
		"type": "stat", "title": title, "description": desc, "datasource": promDS(),
		"targets": targets,
		"fieldConfig": obj{
			"defaults":  obj{"unit": unit, "thresholds": th, "color": obj{"mode": "thresholds"}, "decimals": 1},
			"overrides": []any{},
		},
		"options": obj{
			"reduceOptions": obj{"calcs": []any{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "background", "graphMode": "area", "justifyMode": "auto",
			"orientation": "auto", "textMode": "auto", "wideLayout": true, "showPercentChange": false,
			"percentChangeColorMode": "standard",
		},
	}
}

func bargauge(title, desc, unit string, th obj, max any, targets ...obj) obj {
	if th == nil {
		th = green()
	}
	defaults := obj{"unit": unit, "min": 0, "thresholds": th, "color": obj{"mode": "thresholds"}}
	if max != nil {
		defaults["max"] = max
	}
	return obj{
		"type": "bargauge", "title": title, "description": desc, "datasource": promDS(),
		"targets":     targets,
		"fieldConfig": obj{"defaults": defaults, "overrides": []any{}},
		"options": obj{
			"reduceOptions": obj{"calcs": []any{"lastNotNull"}, "fields": "", "values": true},
			"orientation":   "horizontal", "displayMode": "gradient", "showUnfilled": true,
			"valueMode": "color", "namePlacement": "auto", "sizing": "auto", "minVizHeight": 16, "minVizWidth": 8, "maxVizHeight": 300,
			"legend": obj{"displayMode": "list", "placement": "bottom", "showLegend": false, "calcs": []any{}},
		},
	}
}

func breakerTimeline(title, desc string, targets ...obj) obj {
	return obj{
		"type": "state-timeline", "title": title, "description": desc, "datasource": promDS(),
		"targets": targets,
		"fieldConfig": obj{
			"defaults": obj{
				"color":      obj{"mode": "thresholds"},
				"thresholds": thresholds("green", 1, "yellow", 2, "red"),
				"mappings": []any{obj{"type": "value", "options": obj{
					"0": obj{"text": "closed", "color": "green", "index": 0},
					"1": obj{"text": "half-open", "color": "yellow", "index": 1},
					"2": obj{"text": "open", "color": "red", "index": 2},
				}}},
				"custom": obj{"fillOpacity": 80, "lineWidth": 0},
			},
			"overrides": []any{},
		},
		"options": obj{
			"showValue": "auto", "mergeValues": true, "rowHeight": 0.8, "alignValue": "left",
			"legend":  obj{"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []any{}},
			"tooltip": obj{"mode": "single", "sort": "none"},
		},
	}
}

// annotationsList is the built-in annotation plus the audit log's canary
// and flag changes, read with the Infinity plugin from the admin API.
func annotationsList(params []any) obj {
	return obj{"list": []any{
		obj{
			"builtIn": 1, "datasource": obj{"type": "grafana", "uid": "-- Grafana --"},
			"enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)",
			"name": "Annotations & Alerts", "type": "dashboard",
		},
		obj{
			"name":       "Canary & flag changes",
			"enable":     true,
			"hide":       false,
			"iconColor":  "orange",
			"datasource": obj{"type": "yesoreyeram-infinity-datasource", "uid": "${admin_api}"},
			"target": obj{
				"refId": "Audit", "type": "json", "source": "url", "parser": "backend", "format": "table",
				"url":           "/admin/annotations",
				"url_options":   obj{"method": "GET", "data": "", "params": params},
				"root_selector": "",
				"columns": []any{
					obj{"selector": "time", "text": "time", "type": "timestamp_epoch"},
					obj{"selector": "title", "text": "title", "type": "string"},
					obj{"selector": "text", "text": "text", "type": "string"},
					obj{"selector": "tags", "text": "tags", "type": "string"},
				},
			},
			"mappings": obj{
				"time":  obj{"source": "field", "value": "time"},
				"title": obj{"source": "field", "value": "title"},
				"text":  obj{"source": "field", "value": "text"},
				"tags":  obj{"source": "field", "value": "tags"},
			},
		},
		// Flag file edits never pass through the admin API: the gateway's
		// flag cache is flushed on every flag configuration change, so the
		// flush counter marks them.
		obj{
			"name":        "Flag configuration changes",
			"enable":      true,
			"hide":        false,
			"iconColor":   "purple",
			"datasource":  obj{"type": "prometheus", "uid": "${datasource}"},
			"expr":        scope("changes(ficus_flag_cache_flushes_total[1m]) > 0"),
			"step":        "30s",
			"titleFormat": "flag configuration changed",
			"textFormat":  "{{instance}}: the flag source changed; flag decisions are re-evaluated",
		},
	}}
}

func timeParams() []any {
	return []any{
		obj{"key": "from", "value": "${__from}"},
		obj{"key": "to", "value": "${__to}"},
		obj{"key": "limit", "value": "1000"},
	}
}

func datasourceVars() []any {
	return append([]any{
		obj{
			"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
			"hide": 0, "includeAll": false, "multi": false, "options": []any{},
			"refresh": 1, "regex": "", "skipUrlSync": false,
		},
		obj{
			"name": "admin_api", "label": "Ficus admin API (Infinity)", "type": "datasource",
			"query": "yesoreyeram-infinity-datasource", "description": "Infinity datasource pointing at the gateway's admin listener; feeds the canary and flag change annotations.",
			"hide": 0, "includeAll": false, "multi": false, "options": []any{},
			"refresh": 1, "regex": "", "skipUrlSync": false,
		},
	}, fleetVars()...)
}

func dashboard(uid, title, desc string, tags []string, vars []any, ann obj, panels []any) obj {
	return obj{
		"uid": uid, "title": title, "description": desc, "tags": tags,
		"schemaVersion": schemaVersion, "version": 1, "editable": true,
		"graphTooltip": 1, "fiscalYearStartMonth": 0, "liveNow": false,
		"refresh": "10s", "time": obj{"from": "now-1h", "to": "now"},
		"timepicker": obj{}, "timezone": "browser", "weekStart": "",
		"links": []any{obj{
			"title": "Ficus dashboards", "type": "dashboards", "tags": []any{"ficus"},
			"asDropdown": true, "includeVars": true, "keepTime": true, "icon": "external link",
			"targetBlank": false, "tooltip": "", "url": "",
		}},
		"templating":  obj{"list": vars},
		"annotations": ann,
		"panels":      panels,
	}
}

// ---- PromQL shared by both dashboards ----

// fleetMatchers select the environment, jobs and instances chosen in the
// dashboard's variables (fleetVars); multi-select variables expand to a
// regex, hence =~.
const fleetMatchers = `environment=~"$environment", job=~"$job", instance=~"$instance"`

// scope adds fleetMatchers to every selector of a raw ficus_* metric in
// expr, so each panel follows the fleet variables without repeating them
// in every query. Recording rules (route_backend:...) aggregate over the
// fleet already and are left alone; so are string literals.
func scope(expr string) string {
	var b strings.Builder
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(expr) && expr[j] != '"' {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			b.WriteString(expr[i:min(j+1, len(expr))])
			i = j + 1
		case isIdentByte(c) && (i == 0 || !isIdentByte(expr[i-1])):
			j := i
			for j < len(expr) && (isIdentByte(expr[j]) || expr[j] == ':') {
				j++
			}
			name := expr[i:j]
			b.WriteString(name)
			i = j
			if !strings.HasPrefix(name, "ficus_") || strings.Contains(name, ":") {
				continue
			}
			if i < len(expr) && expr[i] == '{' {
				b.WriteString("{" + fleetMatchers)
				i++
				if i < len(expr) && expr[i] != '}' {
					b.WriteString(", ")
				}
				continue
			}
			b.WriteString("{" + fleetMatchers + "}")
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// fleetVars are the environment, job and instance variables every
// dashboard has: a fleet is never summed together unless asked to.
func fleetVars() []any {
	v := func(name, label, query, desc string) obj {
		return obj{
			"name": name, "label": label, "type": "query", "description": desc,
			"datasource": promDS(),
			"definition": query,
			"query":      obj{"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
			"hide":       0, "includeAll": true, "allValue": ".*", "multi": true,
			"current": obj{"selected": true, "text": []any{"All"}, "value": []any{"$__all"}},
			"options": []any{}, "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": false,
		}
	}
	return []any{
		v("environment", "Environment", "label_values(ficus_build_info, environment)",
			"The environment label the Prometheus scrape configuration gives each target (dashboards/prometheus/prometheus.yml)."),
		v("job", "Job", `label_values(ficus_build_info{environment=~"$environment"}, job)`,
			"Scrape jobs: ficus-gateway (every replica), ficus-legacy, ficus-catalog, ficus-orders, ficus-acl."),
		v("instance", "Instance", `label_values(ficus_build_info{environment=~"$environment", job=~"$job"}, instance)`,
			"One gateway replica or service process (host:port of its metrics listener)."),
	}
}

// sel builds a selector with the base matchers plus extra ones.
func sel(metric, base string, extra ...string) string {
	m := append([]string{}, extra...)
	if base != "" {
		m = append([]string{base}, m...)
	}
	if len(m) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(m, ", ") + "}"
}

func rateOf(metric, base, window string, extra ...string) string {
	return fmt.Sprintf("rate(%s[%s])", sel(metric, base, extra...), window)
}

// ratio is sum by(by) of the matching rate over all, padded with zeros so a
// route with no errors (or no new traffic) reads 0, not "no data".
func ratio(metric, base, by, num, window string) string {
	agg := "sum"
	if by != "" {
		agg = "sum by (" + by + ")"
	}
	return fmt.Sprintf("%s (%s or 0 * %s)\n/\n%s (%s)",
		agg, rateOf(metric, base, window, num), rateOf(metric, base, window),
		agg, rateOf(metric, base, window))
}

func quantile(qv, metric, base, by string) string {
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s, le) (%s))", qv, by, rateOf(metric+"_bucket", base, "$__rate_interval"))
}

// ---- Migration overview ----

func migrationOverview() obj {
	const all = ""
	l := &layout{}

	l.row("Strangling progress")
	l.add(6, 8, stat("Strangled share (all routes)",
		"Share of all requests answered by new services instead of the legacy monolith, over the last rate interval. It should only grow as routes are migrated; a drop means a canary was lowered, a route pinned to legacy, or fallbacks kicked in.",
		"percentunit", thresholds("red", 0.25, "orange", 0.5, "yellow", 0.9, "green"),
		q("A", ratio("ficus_requests_total", all, "", `backend="new"`, "$__rate_interval"), "new share")))
	l.add(10, 8, withMax(timeseries("Strangled share by route",
		"Per route, the share of requests served by the new side. Legacy-only routes sit at 0%, fully migrated routes at 100%, routes under canary at about their canary percent.",
		"percentunit", nil,
		q("A", ratio("ficus_requests_total", all, "route", `backend="new"`, "$__rate_interval"), "{{route}}")), 1))
	l.add(8, 8, bargauge("Strangled share per route (time range)",
		"The same share over the whole selected time range: the migration scoreboard. Compare with the plan; a route at 100% here for long enough is a retirement candidate (see the Retirement row).",
		"percentunit", thresholds("red", 0.5, "yellow", 0.99, "green"), 1,
		instant("A", "sum by (route) (increase(ficus_requests_total{backend=\"new\"}[$__range]) or 0 * increase(ficus_requests_total[$__range]))\n/\nsum by (route) (increase(ficus_requests_total[$__range]))", "{{route}}")))
	l.add(8, 8, stacked(timeseries("Traffic by backend",
		"Requests per second answered, stacked by the backend that served them (legacy or new).",
		"reqps", nil,
		q("A", "sum by (backend) (rate(ficus_requests_total[$__rate_interval]))", "{{backend}}"))))
	l.add(8, 8, withMax(timeseries("Canary percent by route",
		"The live canary percent of each route (share of users sent to the new side). Changes come from the admin API and show as 'Canary & flag changes' annotations; a line moving without an annotation means the flag source changed.",
		"percent", nil,
		q("A", "max by (route) (ficus_route_canary_percent)", "{{route}}")), 100))
	l.add(8, 8, stacked(timeseries("Routing decisions by reason",
		"Why requests went where they went: default, canary, flag, pinned, override, fallback, error. A rise in 'error' means flag evaluation failed and requests fell back to the route's default.",
		"reqps", nil,
		q("A", "sum by (backend, reason) (rate(ficus_decisions_total[$__rate_interval]))", "{{backend}} / {{reason}}"))))

	l.row("Health")
	l.add(12, 9, timeseries("Error rate by route and backend",
		"Share of requests answered with a 5xx, per route and serving backend. The dashed line is the 0.5% error budget of the 99.5% SLO; sustained time above it burns the budget (see the burn panel and the FicusErrorBudget* alerts).",
		"percentunit", thresholds("green", 0.005, "red"),
		q("A", ratio("ficus_requests_total", all, "route, backend", `code=~"5.."`, "$__rate_interval"), "{{route}} / {{backend}}")))
	l.add(12, 9, timeseries("Latency p50 / p99 by backend",
		"Time from request read to response headers, by serving backend, from the classic histogram buckets. New services are expected to be faster than legacy; a p99 near a route's timeout means requests are about to fail with 504.",
		"s", nil,
		q("A", quantile("0.5", "ficus_request_duration_seconds", all, "backend"), "p50 {{backend}}"),
		q("B", quantile("0.99", "ficus_request_duration_seconds", all, "backend"), "p99 {{backend}}")))
	l.add(12, 8, timeseries("Error-budget burn rate (1h) by route and backend",
		"How many times faster than allowed each route burns its 0.5% error budget, over the last hour (recording rule). 1 spends exactly the 30-day budget in 30 days; above 6 (dashed) a ticket is opened if it lasts, above 14.4 the on-call is paged.",
		"x", thresholds("green", 6, "orange", 14.4, "red"),
		q("A", "route_backend:ficus_request_errors:ratio_rate1h / "+sloBudget, "{{route}} / {{backend}}")))
	l.add(12, 8, breakerTimeline("Breaker state by upstream",
		"Circuit breaker of each upstream (legacy, catalog, orders): green closed, yellow half-open (probing), red open (calls refused). Open for minutes fires FicusBreakerOpen.",
		q("A", "max by (upstream) (ficus_breaker_state)", "{{upstream}}")))
	l.add(8, 8, timeseries("Fallbacks new → legacy",
		"Requests the new side failed and the legacy side then served. Healthy is zero; any steady rate means the new service is failing for real users and legacy is hiding it.",
		"reqps", nil,
		q("A", "sum by (route, from, to) (rate(ficus_fallbacks_total[$__rate_interval]))", "{{route}}: {{from}} → {{to}}")))
	l.add(8, 8, stacked(timeseries("Write intents: where each Idempotency-Key went",
		"Keyed writes of routes with write affinity, by what the intent ledger did: first (a new key, bound to the decided side), kept (a retry sent to its key's side), rebound (a retry the decision would have sent to the other side), moved (proven never sent to the new side, so it fell back), released, refused (503: the key may be booked on a side that is down) and ledger_unavailable (503). Refused or ledger_unavailable for minutes means clients cannot finish their orders.",
		"reqps", nil,
		q("A", "sum by (route, result) (rate(ficus_intent_bindings_total[$__rate_interval]))", "{{route}} / {{result}}"))))
	l.add(8, 8, stacked(timeseries("Upstream errors by reason",
		"Failed exchanges with upstreams by reason: connect, timeout, reset, status_5xx, breaker_open, other. Connect errors point at a stopped service, timeouts at an overloaded one.",
		"reqps", nil,
		q("A", "sum by (backend, reason) (rate(ficus_upstream_errors_total[$__rate_interval]))", "{{backend}} / {{reason}}"))))
	l.add(8, 8, timeseries("Retries, rate limiting and rejected overrides",
		"Safe requests re-sent after a connection error, requests refused with 429 by a route's rate limit, and override headers ignored for lack of a valid token. All three are zero in a quiet system.",
		"reqps", nil,
		q("A", "sum by (route) (rate(ficus_retries_total[$__rate_interval]))", "retries {{route}}"),
		q("B", "sum by (route) (rate(ficus_rate_limited_total[$__rate_interval]))", "429 {{route}}"),
		q("C", "sum by (route) (rate(ficus_override_rejected_total[$__rate_interval]))", "override rejected {{route}}")))
	l.add(9, 6, timeseries("Flag evaluation errors",
		"Flag evaluations that failed; each such request was served by the route's default (legacy). Non-zero means the flag provider or its file is broken: canaries silently stop working.",
		"reqps", nil,
		q("A", "sum by (route) (rate(ficus_flag_evaluation_errors_total[$__rate_interval]))", "{{route}}")))
	l.add(9, 6, rightAxis("B", "short", timeseries("Flag cache hit ratio and flushes",
		"Share of flag answers served from the gateway's cache, and how often the cache was dropped because the flag configuration changed. A low hit ratio costs tens of microseconds per request.",
		"percentunit", nil,
		q("A", "sum(rate(ficus_flag_cache_lookups_total{result=\"hit\"}[$__rate_interval]) or 0 * rate(ficus_flag_cache_lookups_total[$__rate_interval]))\n/\nsum(rate(ficus_flag_cache_lookups_total[$__rate_interval]))", "hit ratio"),
		q("B", "sum(increase(ficus_flag_cache_flushes_total[$__rate_interval]))", "flushes"))))
	l.add(6, 6, stat("Requests in flight",
		"Requests being served right now by the public listener. It rises when an upstream slows down; compare with the latency panel.",
		"short", thresholds("green", 500, "yellow", 2000, "red"),
		q("A", "sum(ficus_requests_in_flight)", "in flight")))

	l.add(6, 6, timeseries("Bytes by backend",
		"Body bytes per second forwarded to (request) and relayed from (response) each side, counted from Content-Length; chunked and streamed bodies of unknown length are not counted.",
		"Bps", nil,
		q("A", "sum by (backend) (rate(ficus_request_bytes_total[$__rate_interval]))", "request {{backend}}"),
		q("B", "sum by (backend) (rate(ficus_response_bytes_total[$__rate_interval]))", "response {{backend}}")))
	l.add(6, 6, timeseries("Open connections by replica",
		"Client connections open on each replica's public listener, idle keep-alive ones included. A replica far above the others is not behind the load balancer's balancing.",
		"short", nil,
		q("A", "sum by (instance) (ficus_open_connections)", "{{instance}}")))
	l.add(6, 6, stacked(timeseries("Configuration and flag reloads",
		"Configuration reloads applied or rejected (the old configuration kept serving), and flag files rejected. A rejected reload needs an operator: the file on disk is not what runs.",
		"short", nil,
		q("A", "sum by (result) (increase(ficus_config_reloads_total[$__rate_interval]))", "config {{result}}"),
		q("B", "sum(increase(ficus_flags_reload_errors_total[$__rate_interval]))", "flag file rejected"))))
	l.add(6, 6, instantTable("Builds running",
		"Which build every process runs (ficus_build_info): version, VCS revision and Go version per job and instance. More than one version in a job means a rollout of the binary is under way.",
		instant("A", "max by (job, instance, version, revision, goversion) (ficus_build_info)", "")))

	controlPlaneRow(l)
	servicesRow(l)

	l.row("Shadow traffic")
	l.add(8, 8, timeseries("Shadow diff rate by route",
		"Share of shadowed requests whose new-side answer differed from the primary's (diffs over compared). The dashed line is the 1% FicusShadowDiffRateHigh threshold. A route must sit at or near 0 before its canary is raised.",
		"percentunit", thresholds("green", 0.01, "red"),
		q("A", "sum by (route) (rate(ficus_shadow_requests_total{result=\"diff\"}[$__rate_interval]) or 0 * rate(ficus_shadow_requests_total{result=\"match\"}[$__rate_interval]))\n/\nsum by (route) (rate(ficus_shadow_requests_total{result=~\"match|diff\"}[$__rate_interval]))", "{{route}}")))
	l.add(8, 8, stacked(timeseries("Shadow results",
		"Shadow copies by outcome: match, diff, error (the shadow call failed), dropped (pool full or body over the cap), skipped (not sampled or not eligible).",
		"reqps", nil,
		q("A", "sum by (result) (rate(ficus_shadow_requests_total[$__rate_interval]))", "{{result}}"))))
	l.add(8, 8, timeseries("Shadow drops by route",
		"Shadow copies dropped per route. Drops never affect users, but a route that drops more than 5% of its copies (FicusShadowDropping) compares a biased sample.",
		"reqps", nil,
		q("A", "sum by (route) (rate(ficus_shadow_requests_total{result=\"dropped\"}[$__rate_interval]))", "{{route}}")))
	l.add(12, 8, timeseries("Shadow latency p99 by route",
		"How long the shadow call to the new side took. It runs off the request path, so it does not slow users, but it shows what the new side would cost if it took the route.",
		"s", nil,
		q("A", quantile("0.99", "ficus_shadow_duration_seconds", all, "route"), "{{route}}")))
	l.add(6, 8, stat("Shadow exchanges in flight",
		"Shadow exchanges holding a pool slot right now (mirroring, comparing or storing). Pinned at the routes' concurrency caps means the shadow target is slow and copies are being dropped.",
		"short", nil,
		q("A", "sum(ficus_shadow_in_flight)", "in flight")))
	l.add(6, 8, stat("Expired ignore rules",
		"Shadow ignore rules past their expiry date. They no longer hide their differences: renew them with a reason, or delete them once the difference is fixed. Healthy: 0.",
		"short", thresholds("green", 1, "red"),
		q("A", "sum(ficus_shadow_ignore_rules_expired)", "expired")))

	rolloutRow(l, "Autopilot", "")

	l.row("Retirement")
	l.add(12, 8, bargauge("Time since legacy last served each route",
		"Per route, how long ago the legacy backend last answered a request. A route whose legacy side has been idle for weeks can have its legacy code removed.",
		"s", thresholds("red", 86400, "yellow", 604800, "green"), nil,
		instant("A", "time() - max by (route) (ficus_legacy_route_last_hit_timestamp_seconds)", "{{route}}")))

	return dashboard("ficus-migration-overview", "Ficus / Migration overview",
		"How far the strangler-fig migration has come and whether it is healthy: traffic share per route, errors and latency by backend, canaries, breakers, fallbacks and shadow comparisons.",
		[]string{"ficus", "migration"}, datasourceVars(), withRollbackAnnotations(annotationsList(timeParams()), ""), l.panels)
}

// controlPlaneRow: the shared state every replica follows
// (docs/scale-out.md). Per instance, so a lagging replica stands out.
func controlPlaneRow(l *layout) {
	l.row("Control plane")
	l.add(6, 7, timeseries("State version by replica",
		"The control plane state version each replica has applied. Replicas converge within a second of a change; a line that stays below the others is a replica that stopped following.",
		"short", nil,
		q("A", "max by (instance) (ficus_controlplane_state_version)", "{{instance}}")))
	l.add(6, 7, withMax(timeseries("Connected to the control plane",
		"1 while the replica reaches the control plane store, 0 while it serves from its last known state (it keeps routing, but changes do not reach it).",
		"short", nil,
		q("A", "min by (instance) (ficus_controlplane_connected)", "{{instance}}")), 1))
	l.add(6, 7, withMax(timeseries("Leader",
		"1 on the replica that runs the once-per-fleet work (the autopilot, retirement bookkeeping). Exactly one line at 1 in a healthy fleet.",
		"short", nil,
		q("A", "max by (instance) (ficus_controlplane_leader)", "{{instance}}")), 1))
	l.add(6, 7, timeseries("Time since last sync",
		"Seconds since each replica last synchronised with the control plane. Idle fleets resync periodically; a steadily growing line means the replica is cut off.",
		"s", thresholds("green", 30, "red"),
		q("A", "time() - max by (instance) (ficus_controlplane_last_sync_timestamp_seconds)", "{{instance}}")))
}

// servicesRow: the legacy shop and the new services, each from its own
// /metrics (jobs ficus-legacy, ficus-catalog, ficus-orders, ficus-acl).
func servicesRow(l *layout) {
	l.row("Services behind the gateway")
	l.add(8, 8, stacked(timeseries("Service requests by job and status",
		"Requests each service answered, as the service counts them (ficus_http_requests_total). Compare with the gateway's view: a gap means requests that never reached the service.",
		"reqps", nil,
		q("A", "sum by (job, code) (rate(ficus_http_requests_total[$__rate_interval]))", "{{job}} {{code}}"))))
	l.add(8, 8, timeseries("Service 5xx ratio by job",
		"Share of each service's answers that were 5xx. The legacy's business errors travel inside 200s and do not show here.",
		"percentunit", thresholds("green", 0.005, "red"),
		q("A", ratio("ficus_http_requests_total", "", "job", `code=~"5.."`, "$__rate_interval"), "{{job}}")))
	l.add(8, 8, timeseries("Service latency p99 by job",
		"How long each service took to answer, from its own histogram: the gateway's latency minus this is the gateway and the network.",
		"s", nil,
		q("A", quantile("0.99", "ficus_http_request_duration_seconds", "", "job"), "{{job}}")))
	l.add(8, 8, timeseries("Orders: placed, replayed, repaired",
		"Orders placed by the Order service, POSTs answered from a stored Idempotency-Key reply, and repairs of work a crash or a lost answer left unfinished, by kind. Repairs should be rare; a steady rate means the Catalog is losing answers.",
		"short", nil,
		q("A", "sum(increase(ficus_order_placed_total[$__rate_interval]))", "placed"),
		q("B", "sum(increase(ficus_order_idempotent_replays_total[$__rate_interval]))", "replayed"),
		q("C", "sum by (kind) (increase(ficus_order_repairs_total[$__rate_interval]))", "repair {{kind}}")))
	l.add(8, 8, rightAxis("B", "short", timeseries("Orders → Catalog calls and breaker",
		"Calls of the Order service to the Catalog by outcome (ok, failure, rejected while its breaker is open), and the breaker itself (1 open).",
		"reqps", nil,
		q("A", "sum by (outcome) (rate(ficus_order_catalog_calls_total[$__rate_interval]))", "{{outcome}}"),
		q("B", "max(ficus_order_catalog_breaker_open)", "breaker open"))))
	l.add(8, 8, timeseries("ACL backend: legacy errors and replays",
		"Legacy calls of the anti-corruption backend that failed, by operation and the contract error answered, and POST /orders answered from a stored reply. DEPENDENCY_UNAVAILABLE means the legacy is down.",
		"short", nil,
		q("A", "sum by (operation, code) (increase(ficus_acl_legacy_errors_total[$__rate_interval]))", "{{operation}} {{code}}"),
		q("B", "sum(increase(ficus_acl_idempotent_replays_total[$__rate_interval]))", "replayed")))
	l.add(8, 6, timeseries("Catalog: stock adjustments and 429s",
		"Stock adjustments by outcome (applied, replayed, out_of_stock, key_reused, shadow, reference_released) and requests the Catalog refused with 429 from its own rate limit. out_of_stock rising: orders ask for what is not there; 429s: the Catalog is the bottleneck.",
		"short", nil,
		q("A", "sum by (outcome) (increase(ficus_catalog_stock_adjustments_total[$__rate_interval]))", "{{outcome}}"),
		q("B", "sum(increase(ficus_catalog_rate_limited_total[$__rate_interval]))", "429")))
	l.add(8, 6, stacked(timeseries("Legacy: injected faults",
		"Faults injected into the legacy shop through /shop/admin/faults, by kind. An outage here was asked for; one without these is real.",
		"short", nil,
		q("A", "sum by (kind) (increase(ficus_legacy_faults_injected_total[$__rate_interval]))", "{{kind}}"))))
}

// instantTable shows one instant query as a table, labels as columns.
func instantTable(title, desc string, targets ...obj) obj {
	return obj{
		"type": "table", "title": title, "description": desc, "datasource": promDS(),
		"targets": targets,
		"fieldConfig": obj{
			"defaults":  obj{"custom": obj{"align": "auto", "cellOptions": obj{"type": "auto"}, "inspect": false}, "thresholds": green()},
			"overrides": []any{},
		},
		"options":         obj{"showHeader": true, "cellHeight": "sm", "frameIndex": 0, "footer": obj{"show": false, "reducer": []any{"sum"}, "countRows": false, "fields": ""}},
		"transformations": []any{obj{"id": "organize", "options": obj{"excludeByName": obj{"Time": true, "Value": true}}}},
	}
}

// ---- Route detail ----

func routeDetail() obj {
	const r = `route=~"$route"`
	l := &layout{}

	l.row("$route: at a glance")
	l.add(6, 6, stat("Strangled share",
		"Share of this route's requests answered by the new side over the last rate interval.",
		"percentunit", thresholds("blue"),
		q("A", ratio("ficus_requests_total", r, "", `backend="new"`, "$__rate_interval"), "new share")))
	l.add(6, 6, stat("Canary percent",
		"The route's live canary percent: the share of users routed to the new side.",
		"percent", thresholds("blue"),
		q("A", "max(ficus_route_canary_percent{route=~\"$route\"})", "canary")))
	l.add(6, 6, stat("Error-budget burn (1h)",
		"The worst backend's 1-hour burn rate of the 0.5% error budget. Under 1 is sustainable; over 14.4 pages the on-call.",
		"x", thresholds("green", 1, "yellow", 6, "orange", 14.4, "red"),
		q("A", "max(route_backend:ficus_request_errors:ratio_rate1h{route=~\"$route\"}) / "+sloBudget, "burn 1h")))
	l.add(6, 6, stat("Budget burn over the time range",
		"Error ratio of the route over the whole selected time range divided by the 0.5% budget: the average burn rate. 1 means the range spent budget exactly as fast as the SLO allows.",
		"x", thresholds("green", 1, "yellow", 6, "red"),
		instant("A", "(sum(increase(ficus_requests_total{route=~\"$route\", code=~\"5..\"}[$__range]) or 0 * increase(ficus_requests_total{route=~\"$route\"}[$__range]))\n/\nsum(increase(ficus_requests_total{route=~\"$route\"}[$__range]))) / "+sloBudget, "average burn")))

	l.row("$route: traffic and errors")
	l.add(12, 8, stacked(timeseries("Requests by backend and status",
		"Requests per second on this route, stacked by serving backend and status code.",
		"reqps", nil,
		q("A", "sum by (backend, code) (rate(ficus_requests_total{route=~\"$route\"}[$__rate_interval]))", "{{backend}} {{code}}"))))
	l.add(12, 8, timeseries("Error rate by backend",
		"Share of this route's requests answered with 5xx, per backend. The dashed line is the 0.5% budget.",
		"percentunit", thresholds("green", 0.005, "red"),
		q("A", ratio("ficus_requests_total", r, "backend", `code=~"5.."`, "$__rate_interval"), "{{backend}}")))
	l.add(12, 8, timeseries("Error-budget burn rate by window",
		"Burn rate of the 0.5% budget on the four alert windows (recording rules), per backend. The page fires when both 1h and 5m exceed 14.4; the ticket when both 6h and 30m exceed 6. The short window falling back under the line is how you see that a fix worked.",
		"x", thresholds("green", 6, "orange", 14.4, "red"),
		q("A", "route_backend:ficus_request_errors:ratio_rate5m{route=~\"$route\"} / "+sloBudget, "{{backend}} 5m"),
		q("B", "route_backend:ficus_request_errors:ratio_rate30m{route=~\"$route\"} / "+sloBudget, "{{backend}} 30m"),
		q("C", "route_backend:ficus_request_errors:ratio_rate1h{route=~\"$route\"} / "+sloBudget, "{{backend}} 1h"),
		q("D", "route_backend:ficus_request_errors:ratio_rate6h{route=~\"$route\"} / "+sloBudget, "{{backend}} 6h")))
	l.add(12, 8, timeseries("Latency p50 / p99 by backend",
		"Latency of this route by serving backend. Compare new against legacy before raising the canary.",
		"s", nil,
		q("A", quantile("0.5", "ficus_request_duration_seconds", r, "backend"), "p50 {{backend}}"),
		q("B", quantile("0.99", "ficus_request_duration_seconds", r, "backend"), "p99 {{backend}}")))
	l.add(12, 8, timeseries("Bytes by backend",
		"Body bytes per second of this route, forwarded to and relayed from each side (from Content-Length).",
		"Bps", nil,
		q("A", "sum by (backend) (rate(ficus_request_bytes_total{route=~\"$route\"}[$__rate_interval]))", "request {{backend}}"),
		q("B", "sum by (backend) (rate(ficus_response_bytes_total{route=~\"$route\"}[$__rate_interval]))", "response {{backend}}")))

	l.row("$route: routing and resilience")
	l.add(8, 8, withMax(timeseries("Canary percent",
		"The route's canary percent over time; each change made through the admin API appears as an annotation with its reason and author.",
		"percent", nil,
		q("A", "max(ficus_route_canary_percent{route=~\"$route\"})", "canary %")), 100))
	l.add(8, 8, stacked(timeseries("Routing decisions by reason",
		"Why this route's requests went to each backend.",
		"reqps", nil,
		q("A", "sum by (backend, reason) (rate(ficus_decisions_total{route=~\"$route\"}[$__rate_interval]))", "{{backend}} / {{reason}}"))))
	l.add(8, 8, timeseries("Fallbacks new → legacy",
		"Requests of this route that the new side failed and legacy served. Zero when healthy.",
		"reqps", nil,
		q("A", "sum by (from, to) (rate(ficus_fallbacks_total{route=~\"$route\"}[$__rate_interval]))", "{{from}} → {{to}}")))
	l.add(8, 8, stacked(timeseries("Upstream errors by reason",
		"Failed exchanges of this route with its upstreams, by backend and reason.",
		"reqps", nil,
		q("A", "sum by (backend, reason) (rate(ficus_upstream_errors_total{route=~\"$route\"}[$__rate_interval]))", "{{backend}} / {{reason}}"))))
	l.add(8, 8, timeseries("Retries, rate limiting and rejected overrides",
		"Retries after connection errors, 429s from the route's rate limit, and ignored override headers on this route.",
		"reqps", nil,
		q("A", "sum by (backend) (rate(ficus_retries_total{route=~\"$route\"}[$__rate_interval]))", "retries {{backend}}"),
		q("B", "sum(rate(ficus_rate_limited_total{route=~\"$route\"}[$__rate_interval]))", "429"),
		q("C", "sum(rate(ficus_override_rejected_total{route=~\"$route\"}[$__rate_interval]))", "override rejected")))
	l.add(8, 8, breakerTimeline("Breaker state by upstream",
		"Circuit breakers of all upstreams (a breaker belongs to an upstream, not a route): green closed, yellow half-open, red open.",
		q("A", "max by (upstream) (ficus_breaker_state)", "{{upstream}}")))

	rolloutRow(l, "$route: autopilot", r)

	l.row("$route: shadow traffic")
	l.add(8, 8, timeseries("Shadow diff rate",
		"Share of compared shadow requests of this route whose new-side answer differed. Dashed: the 1% alert threshold.",
		"percentunit", thresholds("green", 0.01, "red"),
		q("A", "sum(rate(ficus_shadow_requests_total{route=~\"$route\", result=\"diff\"}[$__rate_interval]) or 0 * rate(ficus_shadow_requests_total{route=~\"$route\", result=\"match\"}[$__rate_interval]))\n/\nsum(rate(ficus_shadow_requests_total{route=~\"$route\", result=~\"match|diff\"}[$__rate_interval]))", "diff rate")))
	l.add(8, 8, stacked(timeseries("Shadow results",
		"This route's shadow copies by outcome; 'dropped' above 5% of all fires FicusShadowDropping.",
		"reqps", nil,
		q("A", "sum by (result) (rate(ficus_shadow_requests_total{route=~\"$route\"}[$__rate_interval]))", "{{result}}"))))
	l.add(8, 8, timeseries("Shadow latency p50 / p99",
		"Duration of the shadow calls of this route.",
		"s", nil,
		q("A", "histogram_quantile(0.5, sum by (le) (rate(ficus_shadow_duration_seconds_bucket{route=~\"$route\"}[$__rate_interval])))", "p50"),
		q("B", "histogram_quantile(0.99, sum by (le) (rate(ficus_shadow_duration_seconds_bucket{route=~\"$route\"}[$__rate_interval])))", "p99")))
	l.add(12, 9, bargauge("Top differing shadow fields",
		"The ten response fields (JSON paths) that differed most often between legacy and new on this route over the time range. Fix the top one first; a field that always differs may belong in the diff's ignore list.",
		"short", thresholds("orange"), nil,
		instant("A", "topk(10, sum by (field) (increase(ficus_shadow_field_diffs_total{route=~\"$route\"}[$__range])))", "{{field}}")))
	l.add(12, 9, stat("Legacy last served this route",
		"How long ago the legacy backend last answered this route. Weeks of silence at 100% canary means the legacy code behind it can be retired.",
		"s", thresholds("red", 86400, "yellow", 604800, "green"),
		q("A", "time() - max(ficus_legacy_route_last_hit_timestamp_seconds{route=~\"$route\"})", "since last legacy hit")))

	vars := append(datasourceVars(), obj{
		"name": "route", "label": "Route", "type": "query",
		"datasource":  promDS(),
		"description": "One or more routes; the panels add up the routes chosen.",
		"definition":  "label_values(ficus_requests_total{" + fleetMatchers + "}, route)",
		"query":       obj{"qryType": 1, "query": "label_values(ficus_requests_total{" + fleetMatchers + "}, route)", "refId": "PrometheusVariableQueryEditor-VariableQuery"},
		"hide":        0, "includeAll": true, "allValue": ".*", "multi": true, "options": []any{},
		"refresh": 2, "regex": "", "sort": 1, "skipUrlSync": false,
	})
	params := append(timeParams(), obj{"key": "route", "value": "${route}"})
	return dashboard("ficus-route-detail", "Ficus / Route detail",
		"One Ficus route in depth: traffic share, errors and error-budget burn, latency, canary, routing decisions, resilience, shadow comparison and the fields that differ.",
		[]string{"ficus", "migration", "route"}, vars, withRollbackAnnotations(annotationsList(params), r), l.panels)
}
