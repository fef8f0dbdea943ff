// Command standin serves a synthetic /metrics exposition with the gateway's
// metric names and label sets, for running dashboards/check.sh's Prometheus
// part where the real demo cannot run. Its numbers move like a demo in
// trouble: a legacy route failing half its requests, an open legacy breaker,
// fallbacks, a canary. It proves the dashboards' expressions and the check,
// never the gateway; check.sh says so when it uses it.
//
//	go run ./dashboards/standin --listen 127.0.0.1:0
//
// It prints "standin listening on HOST:PORT" once serving and stops on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/rollout"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("standin", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve /metrics on")
	withPending := fs.Bool("with-pending", false, "also export the metrics the gateway does not export yet (shadow, retirement)")
	tick := fs.Duration("tick", 100*time.Millisecond, "simulated traffic is added every tick")
	if err := fs.Parse(args); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	sim, err := newSimulation(reg, *withPending)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "standin listening on %s\n", ln.Addr())

	t := time.NewTicker(*tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case now := <-t.C:
			sim.step(now)
		}
	}
}

// simulation holds the synthetic metrics, declared with the gateway's names.
type simulation struct {
	rnd                                         *rand.Rand
	requests, upErrors, decisions, fallbacks    *prometheus.CounterVec
	retries, rateLimited, overrides, flagErrors *prometheus.CounterVec
	cacheLookups, shadow, fieldDiffs            *prometheus.CounterVec
	duration, shadowDuration                    *prometheus.HistogramVec
	breaker, canary, lastHit                    *prometheus.GaugeVec
	inFlight                                    prometheus.Gauge
	cacheFlushes                                prometheus.Counter
	withPending                                 bool
	gateChecks, rollbacks                       *prometheus.CounterVec
}

func newSimulation(reg *prometheus.Registry, withPending bool) (*simulation, error) {
	cv := func(name string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "Stand-in for the gateway's " + name + "."}, labels)
	}
	gv := func(name string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "Stand-in for the gateway's " + name + "."}, labels)
	}
	buckets := []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	s := &simulation{
		rnd:          rand.New(rand.NewPCG(1, 2)),
		requests:     cv(gateway.MetricRequests, "route", "backend", "method", "code"),
		upErrors:     cv(gateway.MetricUpstreamErrors, "route", "backend", "reason"),
		decisions:    cv(gateway.MetricDecisions, "route", "backend", "reason"),
		fallbacks:    cv(gateway.MetricFallbacks, "route", "from", "to"),
		retries:      cv(gateway.MetricRetries, "route", "backend"),
		rateLimited:  cv(gateway.MetricRateLimited, "route"),
		overrides:    cv(decide.MetricOverrideRejected, "route"),
		flagErrors:   cv(decide.MetricFlagErrors, "route"),
		cacheLookups: cv(decide.MetricFlagCacheLookups, "result"),
		cacheFlushes: prometheus.NewCounter(prometheus.CounterOpts{Name: decide.MetricFlagCacheFlushes, Help: "Stand-in."}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: gateway.MetricRequestDuration, Help: "Stand-in.",
			Buckets: buckets}, []string{"route", "backend"}),
		breaker:     gv(gateway.MetricBreakerState, "backend"),
		canary:      gv(decide.MetricCanaryPercent, "route"),
		inFlight:    prometheus.NewGauge(prometheus.GaugeOpts{Name: gateway.MetricInFlight, Help: "Stand-in."}),
		withPending: withPending,
	}
	cs := []prometheus.Collector{s.requests, s.upErrors, s.decisions, s.fallbacks, s.retries, s.rateLimited,
		s.overrides, s.flagErrors, s.cacheLookups, s.cacheFlushes, s.duration, s.breaker, s.canary, s.inFlight}
	if withPending {
		s.shadow = cv("ficus_shadow_requests_total", "route", "result")
		s.fieldDiffs = cv("ficus_shadow_field_diffs_total", "route", "field")
		s.shadowDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ficus_shadow_duration_seconds", Help: "Stand-in.",
			Buckets: buckets}, []string{"route"})
		s.lastHit = gv("ficus_legacy_route_last_hit_timestamp_seconds", "route")
		cs = append(cs, s.shadow, s.fieldDiffs, s.shadowDuration, s.lastHit)
	}
	// The autopilot: products in its 25% canary step, orders rolled back
	// once by its errors gate.
	phase, percent := gv(rollout.MetricPhase, "route", "phase"), gv(rollout.MetricStepPercent, "route")
	s.gateChecks, s.rollbacks = cv(rollout.MetricGateChecks, "route", "gate", "result"), cv(rollout.MetricRollbacks, "route", "gate")
	cs = append(cs, phase, percent, s.gateChecks, s.rollbacks)
	for route, at := range map[string]rollout.Phase{"products": rollout.PhaseCanary, "orders": rollout.PhaseRolledBack} {
		for _, ph := range rollout.Phases {
			v := 0.0
			if ph == at {
				v = 1
			}
			phase.WithLabelValues(route, string(ph)).Set(v)
		}
		s.rollbacks.WithLabelValues(route, rollout.GateErrors)
	}
	percent.WithLabelValues("products").Set(25)
	percent.WithLabelValues("orders").Set(0)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	s.breaker.WithLabelValues("legacy").Set(2)
	s.breaker.WithLabelValues("catalog").Set(0)
	s.breaker.WithLabelValues("orders").Set(0)
	s.canary.WithLabelValues("orders").Set(30)
	s.canary.WithLabelValues("products").Set(100)
	s.canary.WithLabelValues("legacy-catalog").Set(0)
	for _, r := range []string{"orders", "products", "legacy-catalog"} {
		s.rateLimited.WithLabelValues(r)
		s.overrides.WithLabelValues(r)
		s.flagErrors.WithLabelValues(r)
		s.retries.WithLabelValues(r, "new")
		s.fallbacks.WithLabelValues(r, "new", "legacy")
	}
	return s, nil
}

// step adds one tick of traffic.
func (s *simulation) step(now time.Time) {
	s.inFlight.Set(float64(s.rnd.IntN(20)))
	// legacy-catalog: legacy only, half of it failing (the outage).
	for range 5 {
		code := "200"
		if s.rnd.IntN(2) == 0 {
			code = "503"
			s.upErrors.WithLabelValues("legacy-catalog", "legacy", "status_5xx").Inc()
		}
		s.request("legacy-catalog", "legacy", "GET", code, "default", 0.2)
	}
	// products: on the new side; one in ten fails over to legacy.
	for range 8 {
		if s.rnd.IntN(10) == 0 {
			s.upErrors.WithLabelValues("products", "new", "connect").Inc()
			s.retries.WithLabelValues("products", "new").Inc()
			s.fallbacks.WithLabelValues("products", "new", "legacy").Inc()
			s.request("products", "legacy", "GET", "200", "fallback", 0.15)
			continue
		}
		s.request("products", "new", "GET", "200", "canary", 0.01)
	}
	// orders: a 30% canary.
	for range 4 {
		if s.rnd.IntN(10) < 3 {
			s.request("orders", "new", "POST", "201", "canary", 0.02)
		} else {
			s.request("orders", "legacy", "POST", "200", "default", 0.3)
		}
		s.cacheLookups.WithLabelValues("hit").Inc()
	}
	s.cacheLookups.WithLabelValues("miss").Inc()
	if s.rnd.IntN(50) == 0 {
		s.rateLimited.WithLabelValues("orders").Inc()
		s.overrides.WithLabelValues("products").Inc()
		s.flagErrors.WithLabelValues("orders").Inc()
		s.cacheFlushes.Inc()
	}
	for _, g := range []string{rollout.GateShadow, rollout.GateErrors, rollout.GateLatency, rollout.GateResilience, rollout.GateStep} {
		s.gateChecks.WithLabelValues("products", g, string(rollout.Pass)).Inc()
	}
	if s.rnd.IntN(100) == 0 {
		s.gateChecks.WithLabelValues("orders", rollout.GateErrors, string(rollout.Fail)).Inc()
		s.rollbacks.WithLabelValues("orders", rollout.GateErrors).Inc()
	}
	if s.withPending {
		for _, r := range []string{"products", "orders"} {
			res := []string{"match", "match", "match", "diff", "dropped", "skipped", "error"}[s.rnd.IntN(7)]
			s.shadow.WithLabelValues(r, res).Inc()
			if res == "diff" {
				s.fieldDiffs.WithLabelValues(r, "/price").Inc()
			}
			s.shadowDuration.WithLabelValues(r).Observe(0.01 + s.rnd.Float64()*0.05)
		}
		s.lastHit.WithLabelValues("legacy-catalog").Set(float64(now.Unix()))
		s.lastHit.WithLabelValues("orders").Set(float64(now.Unix()))
	}
}

func (s *simulation) request(route, backend, method, code, reason string, typical float64) {
	s.requests.WithLabelValues(route, backend, method, code).Inc()
	s.decisions.WithLabelValues(route, backend, reason).Inc()
	s.duration.WithLabelValues(route, backend).Observe(typical * (0.5 + s.rnd.Float64()))
}
