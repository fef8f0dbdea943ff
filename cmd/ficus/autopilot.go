package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/acl/reconcile"
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/controlplane/rolloutstore"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/rollout"
	"github.com/ficus-gw/ficus/gateway/rollout/localsource"
	"github.com/ficus-gw/ficus/gateway/rollout/promsource"
	"github.com/prometheus/client_golang/prometheus"
)

// newAutopilot builds the rollout controller of one gateway replica from
// the plans in cfg (none is fine: the admin API then answers NO_PLAN). Every
// replica exports the rollout metrics; only the control plane's leader
// decides. afterSave runs after each write of the controller's (the admin
// API's sync, so that a step is live on this replica at once). Call
// runAutopilot once the gateway serves.
func newAutopilot(g *group, cfg *config.Config, reg *prometheus.Registry, cp *controlPlane, tracker *retire.Tracker,
	afterSave func(context.Context), log *slog.Logger) (*rollout.Controller, error) {
	plans := rollout.PlansFromConfig(cfg)
	metrics, err := rollout.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("autopilot metrics: %w", err)
	}
	var source rollout.Source
	if u := cfg.Autopilot.Prometheus; u != "" {
		ps, err := promsource.New(u, nil)
		if err != nil {
			return nil, fmt.Errorf("autopilot.prometheus: %w", err)
		}
		source = ps
		log.Info("autopilot reads the fleet's traffic from Prometheus", "url", u, "plans", len(plans))
	} else {
		source = localsource.New(reg, nil)
		if cp.name == "postgres" && len(plans) > 0 {
			log.Warn("autopilot reads only this replica's traffic in a fleet; set autopilot.prometheus so the gates judge every replica")
		}
	}
	store := rolloutstore.New(cp.store)
	var data rollout.DataChecker
	if t := cfg.Autopilot.Reconcile; t.Configured() {
		data = newReconcileChecker(g.ctx, t, dataLagBound(plans), log)
	}
	return rollout.New(rollout.Options{
		Plans:   plans,
		Store:   savedHook{Store: store, after: afterSave},
		Audit:   store,
		Leader:  cp.leader,
		Source:  source,
		Data:    data,
		Legacy:  localsource.Retirement{Tracker: tracker},
		Metrics: metrics,
		Log:     log,
	})
}

// runAutopilot runs the controller's reconcile loop until g ends.
func runAutopilot(g *group, ctl *rollout.Controller, tick time.Duration) {
	g.Go("autopilot", func(ctx context.Context) error { return ctl.Run(ctx, tick) })
}

// savedHook calls after once a Save succeeded.
type savedHook struct {
	rollout.Store
	after func(context.Context)
}

func (h savedHook) Save(ctx context.Context, st rollout.State, expect int64) (int64, error) {
	v, err := h.Store.Save(ctx, st, expect)
	if err == nil && h.after != nil {
		h.after(ctx)
	}
	return v, err
}

// dataLagBound is the smallest maxSyncLag of the plans with a data gate:
// the reconcile's lag window. An order missing on one side for longer than
// it counts as a difference, so a sync further behind than the bound fails
// the gate as mismatches.
func dataLagBound(plans []rollout.Plan) time.Duration {
	var lag time.Duration
	for _, p := range plans {
		if p.Gates.Data.Enabled && (lag == 0 || p.Gates.Data.MaxSyncLag < lag) {
			lag = p.Gates.Data.MaxSyncLag
		}
	}
	return lag
}

// reconcileChecker answers the data gate from the dual-run reconcile, run
// in the background at most every `every` while someone asks (it reads every
// product and order of both sides, so it never runs on the request path nor
// in the controller's loop). The gate needs a reconcile newer than the step's
// start; until one finishes it is inconclusive.
type reconcileChecker struct {
	ctx   context.Context
	opts  reconcile.Options
	every time.Duration
	log   *slog.Logger
	now   func() time.Time
	run   func(context.Context, reconcile.Options) (reconcile.Report, error)

	mu      sync.Mutex
	running bool
	started time.Time
	last    rollout.DataStatus
	lastErr error
}

func newReconcileChecker(ctx context.Context, t config.ReconcileTargets, lag time.Duration, log *slog.Logger) *reconcileChecker {
	return &reconcileChecker{
		ctx:   ctx,
		opts:  reconcile.Options{LegacyURL: t.Legacy, CatalogURL: t.Catalog, OrderURL: t.Orders, Lag: lag},
		every: t.Every, log: log, now: time.Now, run: reconcile.Run,
	}
}

var _ rollout.DataChecker = (*reconcileChecker)(nil)

// DataStatus returns the latest finished reconcile and starts the next one
// when the latest is older than every. The routes are not needed: the
// reconcile compares the whole stores.
func (r *reconcileChecker) DataStatus(context.Context, []string) (rollout.DataStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !r.running && now.Sub(r.started) >= r.every {
		r.running, r.started = true, now
		go r.reconcile(now)
	}
	if r.last.CheckedAt.IsZero() {
		if r.lastErr != nil {
			return rollout.DataStatus{}, r.lastErr
		}
		return rollout.DataStatus{}, errors.New("the first reconcile is still running")
	}
	return r.last, nil
}

func (r *reconcileChecker) reconcile(started time.Time) {
	ctx, cancel := context.WithTimeout(r.ctx, max(r.every, time.Minute))
	defer cancel()
	rep, err := r.run(ctx, r.opts)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = false
	if err != nil {
		r.lastErr = fmt.Errorf("reconcile: %w", err)
		r.log.Warn("data gate: reconcile failed", "err", err)
		return
	}
	prev := r.last.Mismatches
	// CheckedAt is when the run began: what it saw is at least that fresh.
	r.last = rollout.DataStatus{CheckedAt: started, Mismatches: len(rep.Differences)}
	r.lastErr = nil
	if r.last.Mismatches != prev {
		r.log.Info("data gate: reconcile result changed", "mismatches", r.last.Mismatches, "products", rep.Products, "orders", rep.Orders, "in_flight", rep.InFlight)
	}
}
