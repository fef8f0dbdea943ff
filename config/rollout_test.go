package config

import (
	"errors"
	"testing"
	"time"
)

const rolloutBase = `
upstreams:
  legacy: {url: 'http://127.0.0.1:8081'}
  catalog: {url: 'http://127.0.0.1:8082', kind: new}
`

func TestRolloutPlanDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(rolloutBase + `
routes:
  - name: products
    path: /api/v1/products/*
    new: catalog
    shadow: {percent: 100}
    rollout: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	ro := c.Routes[0].Rollout
	if ro == nil {
		t.Fatal("rollout: {} decoded as nil")
	}
	var pct []float64
	for _, s := range ro.Steps {
		pct = append(pct, s.Percent)
		if s.MinDuration != 5*time.Minute || s.MinRequests != 200 || s.Manual {
			t.Errorf("step %v: %+v, want 5m, 200 requests, automatic", s.Percent, s)
		}
	}
	if len(pct) != 5 || pct[0] != 1 || pct[4] != 100 {
		t.Errorf("default steps %v, want 1 5 25 50 100", pct)
	}
	if ro.Interval != 30*time.Second || ro.Rollback != RollbackLegacy {
		t.Errorf("interval %v rollback %q, want 30s and legacy", ro.Interval, ro.Rollback)
	}
	g := ro.Gates
	if g.Errors.Alpha != 0.01 || g.Latency.Factor != 1.5 || g.Shadow.MaxRealDiffRate != 0.001 || g.Shadow.MinCompared != 200 {
		t.Errorf("gate defaults %+v", g)
	}
	if c.Routes[0].Rollout != nil && c.DefaultRoute.Rollout != nil {
		t.Error("the default route got a plan it did not declare")
	}
}

func TestRolloutPlanFromYAML(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(rolloutBase + `
autopilot:
  reconcile: {legacy: 'http://127.0.0.1:8081', catalog: 'http://127.0.0.1:8082', orders: 'http://127.0.0.1:8083'}
routes:
  - name: orders
    path: /api/v1/orders/*
    new: catalog
    cohort: checkout
    rollout:
      interval: 10s
      rollback: previous
      steps:
        - {percent: 5, minDuration: 1m, minRequests: 50}
        - {percent: 50, minDuration: 2m, manual: true}
        - {percent: 100, minDuration: 2m}
      gates:
        shadow: {disabled: true}
        errors: {alpha: 0.001, tolerance: 0.002, minRequests: 30}
        latency: {factor: 2, maxP99: 800ms}
        data: {enabled: true, maxSyncLag: 5s}
        retire: {window: 24h}
  - name: cart
    path: /api/v1/cart/*
    new: catalog
    cohort: checkout
`))
	if err != nil {
		t.Fatal(err)
	}
	ro := c.Routes[0].Rollout
	if ro.Steps[1].Percent != 50 || !ro.Steps[1].Manual || ro.Steps[1].MinRequests != 200 || ro.Steps[0].MinRequests != 50 {
		t.Errorf("steps %+v", ro.Steps)
	}
	if ro.Gates.Latency.MaxP99 != 800*time.Millisecond || !ro.Gates.Data.Enabled || ro.Gates.Data.MaxSyncLag != 5*time.Second || ro.Gates.Retire.Window != 24*time.Hour {
		t.Errorf("gates %+v", ro.Gates)
	}
}

// TestRolloutValidationNamesEveryBadField: one file with a problem in every
// part of a plan; each one comes back with its key path.
func TestRolloutValidationNamesEveryBadField(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(rolloutBase + `
routes:
  - name: products
    path: /api/v1/products/*
    rollout:
      interval: 100ms
      rollback: sideways
      steps:
        - {percent: 10, minDuration: 1m}
        - {percent: 5, minDuration: -1s}
        - {percent: 120, minDuration: 1m}
        - {percent: 90, minDuration: 1m}
      gates:
        shadow: {maxRealDiffRate: 1.5}
        errors: {alpha: 0.5, tolerance: -0.1}
        latency: {factor: 0.5, maxP99: -1s, alpha: 2}
        data: {maxSyncLag: -1s}
        retire: {window: -1h}
  - name: search
    path: /api/v1/search/*
    new: catalog
    cohort: products
`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	got := map[string]bool{}
	for _, p := range ve.Problems {
		got[p.Path] = true
	}
	for _, want := range []string{
		"routes[0].rollout", // no new upstream
		"routes[0].rollout.interval",
		"routes[0].rollout.rollback",
		"routes[0].rollout.steps[1].percent",
		"routes[0].rollout.steps[1].minDuration",
		"routes[0].rollout.steps[2].percent",
		"routes[0].rollout.steps[3].percent",
		"routes[0].rollout.gates.shadow",
		"routes[0].rollout.gates.shadow.maxRealDiffRate",
		"routes[0].rollout.gates.errors.alpha",
		"routes[0].rollout.gates.errors.tolerance",
		"routes[0].rollout.gates.latency.factor",
		"routes[0].rollout.gates.latency.maxP99",
		"routes[0].rollout.gates.latency.alpha",
		"routes[0].rollout.gates.data.maxSyncLag",
		"routes[0].rollout.gates.retire.window",
	} {
		if !got[want] {
			t.Errorf("no problem reported at %s", want)
		}
	}
	if t.Failed() {
		t.Log(err)
	}
}

func TestRolloutOnePlanPerCohort(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(rolloutBase + `
routes:
  - name: orders
    path: /api/v1/orders/*
    new: catalog
    cohort: checkout
    rollout: {gates: {shadow: {disabled: true}}}
  - name: cart
    path: /api/v1/cart/*
    cohort: checkout
  - name: pay
    path: /api/v1/pay/*
    new: catalog
    cohort: checkout
    rollout: {gates: {shadow: {disabled: true}}}
`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	var second, noNew bool
	for _, p := range ve.Problems {
		if p.Path == "routes[2].rollout" && p.Value == "pay" {
			second = true
		}
		if p.Path == "routes[0].rollout" {
			noNew = true
		}
	}
	if !second || !noNew {
		t.Errorf("want a second-plan problem at routes[2].rollout and a cohort member without new at routes[0].rollout; got %v", err)
	}
}

func TestAutopilotValidation(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(rolloutBase + `
autopilot:
  prometheus: 'ftp://prom:9090/api'
  tick: 10ms
  reconcile: {legacy: 'http://127.0.0.1:8081', every: 10ms}
routes:
  - name: orders
    path: /api/v1/orders/*
    new: catalog
    rollout:
      gates:
        shadow: {disabled: true}
        data: {enabled: true}
`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	got := map[string]bool{}
	for _, p := range ve.Problems {
		got[p.Path] = true
	}
	for _, want := range []string{
		"autopilot.prometheus",
		"autopilot.tick",
		"autopilot.reconcile",
		"autopilot.reconcile.every",
		"routes[0].rollout.gates.data.enabled",
	} {
		if !got[want] {
			t.Errorf("no problem reported at %s", want)
		}
	}
	if t.Failed() {
		t.Log(err)
	}

	c, err := Parse([]byte(rolloutBase + `
autopilot:
  prometheus: 'http://127.0.0.1:9090'
  reconcile: {legacy: 'http://127.0.0.1:8081', catalog: 'http://127.0.0.1:8082', orders: 'http://127.0.0.1:8083'}
routes:
  - name: orders
    path: /api/v1/orders/*
    new: catalog
    rollout:
      gates:
        shadow: {disabled: true}
        data: {enabled: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Autopilot.Tick != time.Second || c.Autopilot.Reconcile.Every != time.Minute || !c.Autopilot.Reconcile.Configured() {
		t.Errorf("autopilot defaults: %+v", c.Autopilot)
	}
}
