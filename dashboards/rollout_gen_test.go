package dashboards

import (
	"fmt"
	"strings"

	"github.com/ficus-gw/ficus/gateway/rollout"
)

// rolloutRow adds the autopilot's row (gateway/rollout): each route's
// phase over time, the percent the autopilot sends to new, gate verdicts
// and rollbacks. base is the routes' matcher ("" for every route).
func rolloutRow(l *layout, title, base string) {
	by := "route"
	if base != "" {
		by = ""
	}
	legend := func(s string) string {
		if base == "" {
			return "{{route}} " + s
		}
		return s
	}
	l.row(title)
	l.add(12, 7, phaseTimeline("Rollout phase",
		"The autopilot's phase of each planned route: legacy (not started), shadow (copies compared, nobody moved), canary (a step of users on new), new (100%), retired, paused, rolled-back (a gate failed; waiting for an operator). `ficus ctl rollout status ROUTE` says why and what is next.",
		q("A", phaseExpr(base, by), legend(""))))
	l.add(12, 7, withMax(timeseries("Rollout step percent",
		"Percent of users the autopilot sends to the new side (0 while pinned to legacy after a rollback). Steps up only when every gate passed; a drop to 0 is a rollback, marked by the 'Autopilot rollbacks' annotation.",
		"percent", nil,
		q("A", aggBy("max", by, sel(rollout.MetricStepPercent, base)), legend("step %"))), 100))
	l.add(12, 8, stacked(timeseries("Gate verdicts",
		"Gate evaluations per interval by gate and verdict. 'inconclusive' means too little traffic for a verdict yet (the rollout waits); any 'fail' of shadow, errors, latency or resilience in a canary step rolls back; failing data or shadow (in the shadow phase) holds.",
		"short", nil,
		q("A", aggBy("sum", joinBy(by, "gate, result"), "increase("+sel(rollout.MetricGateChecks, base)+"[$__rate_interval])"), legend("{{gate}} {{result}}")))))
	l.add(12, 8, bargauge("Automatic rollbacks (time range)",
		"Rollbacks the autopilot made over the time range, by route and the gate that failed. Each raises FicusRolloutRolledBack (a ticket); users are already back on legacy.",
		"short", thresholds("green", 1, "red"), nil,
		instant("A", "sum by (route, gate) (increase("+sel(rollout.MetricRollbacks, base)+"[$__range]))", "{{route}}: {{gate}}")))
}

// phaseExpr numbers each route's phase in rollout.Phases order, for the
// timeline's value mappings.
func phaseExpr(base, by string) string {
	var terms []string
	for i, ph := range rollout.Phases {
		terms = append(terms, fmt.Sprintf("%s * %d", aggBy("sum", by, sel(rollout.MetricPhase, base, fmt.Sprintf("phase=%q", ph))), i))
	}
	return strings.Join(terms, "\n+ ")
}

func aggBy(agg, by, expr string) string {
	if by == "" {
		return agg + " (" + expr + ")"
	}
	return agg + " by (" + by + ") (" + expr + ")"
}

func joinBy(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// phaseTimeline is a state timeline with one colour per phase.
func phaseTimeline(title, desc string, targets ...obj) obj {
	colors := map[rollout.Phase]string{
		rollout.PhaseLegacy: "text", rollout.PhaseShadow: "blue", rollout.PhaseCanary: "yellow",
		rollout.PhaseNew: "green", rollout.PhaseRetired: "dark-green", rollout.PhasePaused: "purple",
		rollout.PhaseRolledBack: "red",
	}
	opts := obj{}
	for i, ph := range rollout.Phases {
		opts[fmt.Sprint(i)] = obj{"text": string(ph), "color": colors[ph], "index": i}
	}
	return obj{
		"type": "state-timeline", "title": title, "description": desc, "datasource": promDS(),
		"targets": targets,
		"fieldConfig": obj{
			"defaults": obj{
				"color":      obj{"mode": "thresholds"},
				"thresholds": green(),
				"mappings":   []any{obj{"type": "value", "options": opts}},
				"custom":     obj{"fillOpacity": 80, "lineWidth": 0},
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

// withRollbackAnnotations adds the autopilot's rollbacks to a dashboard's
// annotations, read from the rollback counter: the audit log's rollout
// entries (with the failing gate's values) already come through the admin
// API's annotation; this one marks the rollbacks in red. base filters the
// routes ("" for all).
func withRollbackAnnotations(ann obj, base string) obj {
	ann["list"] = append(ann["list"].([]any), obj{
		"name":        "Autopilot rollbacks",
		"enable":      true,
		"hide":        false,
		"iconColor":   "red",
		"datasource":  obj{"type": "prometheus", "uid": "${datasource}"},
		"expr":        "sum by (route, gate) (increase(" + sel(rollout.MetricRollbacks, base) + "[1m])) > 0",
		"step":        "30s",
		"titleFormat": "autopilot rolled back {{route}}",
		"textFormat":  "gate {{gate}} failed; `ficus ctl rollout status {{route}}` shows its values against its thresholds (audit log: rollout:rollback)",
	})
	return ann
}
