package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ReloadPlan compares a running configuration with the one a reload would
// apply. changed lists what the reload changes (key paths); restart lists
// what differs but cannot change without a restart, each with the reason.
// A reload applies only when restart is empty: all or nothing.
//
// What reloads: each route's path, methods, timeout, retries, fallback,
// rateLimit and bufferResponses (the route table and the per-route limits),
// and each upstream's url, timeouts, maxConns, idle time and breaker. The
// set of routes (names, order, sides) and of upstreams stays; live state
// (canary, pins) belongs to the control plane (ficus ctl), listeners,
// tokens, stores and limits.* to the process.
func ReloadPlan(old, next *Config) (changed, restart []string) {
	// Top-level keys other than routes and upstreams: a restart.
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*next)
	t := ov.Type()
	for i := range t.NumField() {
		key := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		switch key {
		case "routes", "upstreams", "defaultRoute":
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			restart = append(restart, key+": changes only with a restart")
		}
	}

	on, nn := sortedKeys(old.Upstreams), sortedKeys(next.Upstreams)
	if !slices.Equal(on, nn) {
		restart = append(restart, fmt.Sprintf("upstreams: adding or removing upstreams needs a restart (running: %s; file: %s)", strings.Join(on, ", "), strings.Join(nn, ", ")))
	} else {
		for _, name := range on {
			o, n := old.Upstreams[name], next.Upstreams[name]
			if o.Kind != n.Kind {
				restart = append(restart, fmt.Sprintf("upstreams.%s.kind: changes only with a restart", name))
				continue
			}
			if !reflect.DeepEqual(o, n) {
				changed = append(changed, "upstreams."+name)
			}
		}
	}

	oldRoutes := append(slices.Clip(old.Routes), old.DefaultRoute)
	newRoutes := append(slices.Clip(next.Routes), next.DefaultRoute)
	names := func(rs []Route) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.Name
		}
		return out
	}
	if !slices.Equal(names(oldRoutes), names(newRoutes)) {
		restart = append(restart, fmt.Sprintf("routes: adding, removing, renaming or reordering routes needs a restart (running: %s; file: %s)",
			strings.Join(names(oldRoutes), ", "), strings.Join(names(newRoutes), ", ")))
		return changed, restart
	}
	for i := range oldRoutes {
		o, n := oldRoutes[i], newRoutes[i]
		p := fmt.Sprintf("routes[%d]", i)
		if i == len(oldRoutes)-1 {
			p = "defaultRoute"
		}
		fixed := []struct {
			key  string
			a, b any
			why  string
		}{
			{"legacy", o.Legacy, n.Legacy, "changes only with a restart"},
			{"new", o.New, n.New, "changes only with a restart"},
			{"legacyRemoved", o.LegacyRemoved, n.LegacyRemoved, "changes only with a restart"},
			{"cohort", o.Cohort, n.Cohort, "changes only with a restart"},
			{"flag", o.Flag, n.Flag, "changes only with a restart"},
			{"canary", o.Canary, n.Canary, "is live state: change it with ficus ctl canary (audited)"},
			{"shadow", o.Shadow, n.Shadow, "changes only with a restart"},
			{"affinity", o.Affinity, n.Affinity, "changes only with a restart"},
			{"rollout", o.Rollout, n.Rollout, "changes only with a restart"},
		}
		for _, f := range fixed {
			if !reflect.DeepEqual(f.a, f.b) {
				restart = append(restart, fmt.Sprintf("%s.%s (%s): %s", p, f.key, o.Name, f.why))
			}
		}
		// Everything else of a route reloads; name what changed.
		o2, n2 := o, n
		for _, r := range []*Route{&o2, &n2} {
			r.Legacy, r.New, r.LegacyRemoved, r.Cohort, r.Flag, r.Canary = "", "", false, "", "", 0
			r.Shadow, r.Affinity, r.Rollout = nil, nil, nil
		}
		if !reflect.DeepEqual(o2, n2) {
			changed = append(changed, fmt.Sprintf("%s (%s)", p, o.Name))
		}
	}
	return changed, restart
}
