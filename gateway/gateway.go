// Package gateway is Ficus's public proxy: a Fiber app that normalises the
// request path, matches it to a configured route, asks a Decider which
// backend serves it, and forwards the request unchanged (hop-by-hop fields
// aside) through a per-upstream client with a circuit breaker, bounded
// retries, safe fallback to the legacy side and a per-route rate limit. A
// second, operator-only listener serves /metrics, /healthz, /readyz and the
// admin API.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/intent"
	"github.com/ficus-gw/ficus/gateway/proxy"
	"github.com/ficus-gw/ficus/gateway/route"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/ficus-gw/ficus/gateway/tlsreload"
	"github.com/ficus-gw/ficus/internal/reqlog"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

// DefaultGCPercent is the garbage collector's target (GOGC) a serving
// gateway sets when the process environment names none. The proxy path
// allocates almost nothing (BenchmarkProxyPath: 0 allocations on a buffered
// route), so the live heap stays near 3 MB and the collector's work hardly
// depends on it, while the heap's peak, and with it the resident set, does:
// measured under the benchmark's wrk load (docs/benchmarks.md), 50 instead
// of Go's 100 lowered the peak RSS by about 2.3 MiB at 64 connections and
// 4.5 MiB at 256, with CPU per request unchanged within the noise. GOGC (or
// GOMEMLIMIT) in the environment overrides it.
const DefaultGCPercent = 50

var gcOnce sync.Once

// setGCPercent applies DefaultGCPercent unless GOGC is set.
func setGCPercent(log *slog.Logger) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return
	}
	debug.SetGCPercent(DefaultGCPercent)
	log.Debug("garbage collector target set", "gogc", DefaultGCPercent)
}

// Response headers the gateway adds to every proxied answer.
const (
	// HeaderRoute names the Ficus route that matched.
	HeaderRoute = "X-Ficus-Route"
	// HeaderBackend is "legacy" or "new": the side that produced the answer.
	HeaderBackend = "X-Ficus-Backend"
	// HeaderFallback is present when the new side failed and the legacy side
	// answered; its value is the failure (connect, timeout, reset,
	// status_5xx, breaker_open).
	HeaderFallback = "X-Ficus-Fallback"
)

// MetricStaleRetries counts, by upstream, requests re-sent because their
// pooled connection was found closed before anything was sent, or (safe
// methods) died before the answer began (proxy.ErrStaleConn).
const MetricStaleRetries = "ficus_upstream_stale_retries_total"

// Options are the gateway's dependencies.
type Options struct {
	// Config is the validated configuration (config.Load or config.Demo).
	Config *config.Config
	// Registry receives the gateway's metrics. Required.
	Registry *prometheus.Registry
	// Logger receives structured logs. Nil: slog.Default().
	Logger *slog.Logger
	// Decider picks the backend of routes that have a new side. Nil: the
	// built-in one (legacy, or new for a route at canary 100).
	Decider Decider
	// Admin, when set, serves /admin and everything below it on the admin
	// listener.
	Admin fiber.Handler
	// Now is the clock of rate limits, RouteStats and the time LegacyHits
	// is given (tests). Nil: the real clock, read as few times as a request
	// allows.
	Now func() time.Time
	// Dial, when set, connects to upstreams instead of TCP: it receives the
	// upstream name and its host:port. For in-process upstreams (tests,
	// benchmarks). Nil: TCP with the upstream's dialTimeout.
	Dial func(upstream, addr string) (net.Conn, error)
	// ShadowMappings, by route name, make a legacy-kind upstream's answers
	// comparable with the new contract in shadow traffic (see
	// shadow.Mapping). Nil: routes between acl- and new-kind upstreams
	// only.
	ShadowMappings map[string]shadow.Mapping
	// LegacyHits is told each time a route's legacy side answers (the
	// retirement tracker, gateway/retire). Route indexes follow
	// Config.Routes, the default route last. Nil: not tracked.
	LegacyHits LegacyHits
	// Intents is the write-intent ledger of routes with affinity
	// (routes[].affinity). Required when any route has affinity.
	Intents intent.Ledger
}

// LegacyHits records that the legacy side served a route. Hit runs on the
// request path, before the handler returns: it must be cheap and must not
// keep c or anything c returns. at is when the answer was complete, by the
// gateway's clock (Options.Now).
type LegacyHits interface {
	Hit(route int, c *fiber.Ctx, at time.Time)
}

// Gateway is the proxy. Create it with New and run it with Serve.
type Gateway struct {
	cfg *config.Config // as started; the reloadable part's current values are gen's
	log *slog.Logger
	// gen is the route table, routes and upstreams requests are served
	// with; a reload swaps it whole (reload.go).
	gen      atomic.Pointer[generation]
	reloadMu sync.Mutex // one Reload at a time
	// staleCarry keeps the stale-retry counts of upstreams a reload
	// replaced, by name.
	staleCarry map[string]*atomic.Uint64
	// stats is each route's traffic by backend, by route index: it
	// outlives reloads (the route set does not change).
	stats    [][numBackends]backendRings
	decider  Decider
	m        *metrics
	ids      *idSource
	trust    proxy.Trust
	stream   int // limits.streamResponseThresholdBytes
	app      *fiber.App
	adminApp *fiber.App
	ready    atomic.Bool
	draining atomic.Bool
	served   atomic.Bool
	dial     func(upstream, addr string) (net.Conn, error)
	shadow   *shadow.Shadow
	hits     LegacyHits
	intents  intent.Ledger
	// intentMetrics counts write-affinity outcomes per route (affinity.go).
	intentMetrics intentMetrics
	// tokenHeader carries the override token (routing.override.tokenHeader),
	// in canonical form; it is removed before forwarding.
	tokenHeader []byte
	// failures rate-limits the log lines of failed requests.
	failures *reqlog.Logger
	// pubCert and admCert serve the listeners over HTTPS when configured
	// (tls, admin.tls); nil: plain HTTP.
	pubCert, admCert *tlsreload.Certificate
	// clock is Options.Now; nil means the real clock, and a request's own
	// readings serve as "now" where it has one (see finish).
	clock func() time.Time
}

// routeState is everything the hot path needs about one route.
type routeState struct {
	name      string
	nameBytes []byte // name, for SetCanonical
	route     *route.Route
	ups       [numBackends]*proxy.Upstream // [decide.New] is nil for legacy-only routes
	timeout   [numBackends]time.Duration
	retries   int
	fallback  bool
	stream    bool // !bufferResponses: upstream bodies may stream
	limiter   *rateLimiter
	err405    *Error
	deny      *Error // non-nil: the route is fenced (routes[].deny)
	affinity  []byte // the intent header in canonical form; nil: no write affinity
	// legacyRemoved: the legacy side is retired; new serves every request
	// (routes[].legacyRemoved).
	legacyRemoved bool
}

// New builds the gateway: route table, one client and breaker per
// upstream, metrics (registered on opts.Registry) and both Fiber apps. It
// does not listen; see Serve.
func New(opts Options) (*Gateway, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("gateway: Options.Config is required")
	}
	if opts.Registry == nil {
		return nil, errors.New("gateway: Options.Registry is required")
	}
	g := &Gateway{cfg: cfg, log: opts.Logger, decider: opts.Decider, dial: opts.Dial, hits: opts.LegacyHits,
		stream: cfg.Limits.StreamResponseThresholdBytes, clock: opts.Now, intents: opts.Intents}
	if h := cfg.Routing.Override.TokenHeader; h != "" {
		g.tokenHeader = fasthttp.AppendNormalizedHeaderKey(nil, h)
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.failures = reqlog.New(g.log)
	if err := g.loadCertificates(); err != nil {
		return nil, err
	}
	if g.decider == nil {
		g.decider = newStaticDecider(cfg)
	}
	var err error
	if g.ids, err = newIDSource(); err != nil {
		return nil, fmt.Errorf("gateway: seeding request ids: %w", err)
	}
	for _, p := range cfg.TrustedProxies {
		pfx, err := config.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("gateway: trustedProxies %q: %w", p, err)
		}
		g.trust = append(g.trust, pfx)
	}
	gen, err := g.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	g.gen.Store(gen)
	g.stats = make([][numBackends]backendRings, len(gen.routes))
	if err := g.registerBreakerGauges(opts.Registry); err != nil {
		return nil, err
	}
	if g.m, err = newMetrics(opts.Registry, gen.table); err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	names := make([]string, len(gen.routes)) // "" for routes without affinity: no series
	for i := range gen.routes {
		if gen.routes[i].affinity != nil {
			names[i] = gen.routes[i].name
		}
	}
	if g.intentMetrics, err = newIntentMetrics(opts.Registry, names); err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	if g.shadow, err = shadow.New(shadow.Options{Config: cfg, Registry: opts.Registry, Logger: g.log.With("subsystem", "shadow"),
		Now: opts.Now, Mappings: opts.ShadowMappings, Dial: opts.Dial}); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.app = g.newPublicApp()
	g.adminApp = g.newAdminApp(opts.Registry, opts.Admin)
	srv := g.app.Server()
	if err := opts.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricOpenConnections, Help: "Client connections open on the public listener (idle keep-alive ones included).",
	}, func() float64 { return float64(srv.GetOpenConnectionsCount()) })); err != nil {
		return nil, fmt.Errorf("gateway: registering %s: %w", MetricOpenConnections, err)
	}
	return g, nil
}

// generation is what a request is served with: built from one
// configuration, never changed after it is stored.
type generation struct {
	cfg    *config.Config
	table  *route.Table
	routes []routeState
	ups    map[string]*proxy.Upstream
}

// build makes the generation of cfg. With prev (a reload), upstreams and
// rate limiters whose configuration did not change are kept, with their
// connections, breaker state and tokens.
func (g *Gateway) build(cfg *config.Config, prev *generation) (*generation, error) {
	gen := &generation{cfg: cfg}
	var err error
	if gen.table, err = route.Compile(cfg.Routes, cfg.DefaultRoute); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	all := append(slices.Clip(cfg.Routes), cfg.DefaultRoute)
	if gen.ups, err = g.buildUpstreams(cfg, prev); err != nil {
		return nil, err
	}
	gen.routes = make([]routeState, len(all))
	for i, r := range all {
		rs := &gen.routes[i]
		rs.name = r.Name
		rs.nameBytes = []byte(r.Name)
		rs.route = gen.table.Route(i)
		rs.retries = r.Retries
		rs.fallback = r.FallbackEnabled() && !r.LegacyRemoved
		rs.legacyRemoved = r.LegacyRemoved
		rs.stream = !r.BufferResponses
		rs.limiter = newRateLimiter(r.RateLimit.RPS, r.RateLimit.Burst)
		if prev != nil && i < len(prev.routes) && prev.routes[i].name == r.Name && prev.routes[i].limiter != nil &&
			prev.cfg != nil && routeAt(prev.cfg, i).RateLimit == r.RateLimit {
			rs.limiter = prev.routes[i].limiter // its tokens carry over
		}
		if r.Affinity != nil {
			if g.intents == nil {
				return nil, fmt.Errorf("gateway: route %s has write affinity but Options.Intents is nil", r.Name)
			}
			rs.affinity = fasthttp.AppendNormalizedHeaderKey(nil, r.Affinity.Header)
		}
		rs.err405 = &Error{Status: fiber.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Message: "method not allowed on this route; allowed: " + rs.route.Allow, Allow: rs.route.Allow}
		if d := r.Deny; d != nil {
			rs.deny = &Error{Status: d.Status, Code: d.Code, Message: d.Message}
			if d.Successor != "" {
				rs.deny.Link = "<" + d.Successor + `>; rel="successor-version"` // RFC 5829
			}
		}
		names := [numBackends]string{decide.Legacy: r.Legacy, decide.New: r.New}
		for b, n := range names {
			if n == "" {
				continue
			}
			up, ok := gen.ups[n]
			if !ok {
				return nil, fmt.Errorf("gateway: route %s names unknown upstream %q", r.Name, n)
			}
			rs.ups[b] = up
			rs.timeout[b] = r.Timeout
			if rs.timeout[b] <= 0 {
				rs.timeout[b] = up.Timeout()
			}
		}
	}
	return gen, nil
}

// routeAt is cfg's route i in the gateway's order (the default route last).
func routeAt(cfg *config.Config, i int) config.Route {
	if i < len(cfg.Routes) {
		return cfg.Routes[i]
	}
	return cfg.DefaultRoute
}

// buildUpstreams makes one client and breaker per upstream, keeping
// prev's where the upstream's configuration is unchanged.
func (g *Gateway) buildUpstreams(cfg *config.Config, prev *generation) (map[string]*proxy.Upstream, error) {
	ups := make(map[string]*proxy.Upstream, len(cfg.Upstreams))
	for name, u := range cfg.Upstreams {
		longest := longestTimeout(cfg, name)
		if prev != nil && prev.ups[name] != nil && reflect.DeepEqual(prev.cfg.Upstreams[name], u) && longestTimeout(prev.cfg, name) == longest {
			ups[name] = prev.ups[name]
			continue
		}
		var dial func(string) (net.Conn, error)
		if g.dial != nil {
			dial = func(addr string) (net.Conn, error) { return g.dial(name, addr) }
		}
		up, err := proxy.NewUpstream(name, u, proxy.Options{
			Dial:            dial,
			LongestTimeout:  longest,
			MaxBufferedBody: cfg.Limits.StreamResponseThresholdBytes,
			OnStateChange: func(name string, from, to gobreaker.State) {
				lvl := slog.LevelWarn
				if to == gobreaker.StateClosed {
					lvl = slog.LevelInfo
				}
				g.log.Log(context.Background(), lvl, "circuit breaker changed state", "upstream", name, "from", from.String(), "to", to.String())
			},
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		ups[name] = up
	}
	return ups, nil
}

// longestTimeout is the longest route timeout on upstream name: its
// breaker's window must be longer (proxy.Options.LongestTimeout).
func longestTimeout(cfg *config.Config, name string) time.Duration {
	var longest time.Duration
	for _, r := range append(slices.Clip(cfg.Routes), cfg.DefaultRoute) {
		if r.Legacy == name || r.New == name {
			longest = max(longest, r.Timeout)
		}
	}
	return longest
}

// registerBreakerGauges exports each upstream's breaker state, read from
// the current generation (the set of upstreams does not change on reload).
func (g *Gateway) registerBreakerGauges(reg *prometheus.Registry) error {
	g.staleCarry = map[string]*atomic.Uint64{}
	for name := range g.gen.Load().ups {
		carry := new(atomic.Uint64) // of upstreams a reload replaced: the counter never goes down
		g.staleCarry[name] = carry
		gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        MetricBreakerState,
			Help:        "Circuit breaker state by upstream: 0 closed, 1 half-open, 2 open.",
			ConstLabels: prometheus.Labels{LabelUpstream: name},
		}, func() float64 {
			if up := g.gen.Load().ups[name]; up != nil {
				return float64(up.State())
			}
			return 0
		})
		if err := reg.Register(gauge); err != nil {
			return fmt.Errorf("gateway: registering %s: %w", MetricBreakerState, err)
		}
		stale := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        MetricStaleRetries,
			Help:        "Requests re-sent on a fresh connection because their pooled one had been closed by the upstream before anything was sent (any method) or before the answer began (GET, HEAD, OPTIONS).",
			ConstLabels: prometheus.Labels{"backend": name},
		}, func() float64 {
			n := carry.Load()
			if up := g.gen.Load().ups[name]; up != nil {
				n += up.StaleRetries()
			}
			return float64(n)
		})
		if err := reg.Register(stale); err != nil {
			return fmt.Errorf("gateway: registering %s: %w", MetricStaleRetries, err)
		}
	}
	return nil
}

func (g *Gateway) newPublicApp() *fiber.App {
	l := g.cfg.Limits
	app := fiber.New(fiber.Config{
		DisableStartupMessage:        true,
		ErrorHandler:                 g.errorHandler,
		BodyLimit:                    l.MaxRequestBodyBytes,
		ReadBufferSize:               l.MaxHeaderBytes,
		ReadTimeout:                  l.ReadTimeout,
		WriteTimeout:                 l.WriteTimeout,
		IdleTimeout:                  l.IdleTimeout,
		DisableDefaultContentType:    true, // relay the upstream's Content-Type, or none
		DisablePreParseMultipartForm: true,
	})
	app.Hooks().OnListen(func(fiber.ListenData) error {
		g.ready.Store(true)
		return nil
	})
	// Expect: 100-continue is decided before the body is invited: a
	// declared length over the limit gets the 413 at once, so the client
	// never starts sending what would be refused.
	app.Server().ExpectHandler = g.expect
	// handle routes on route.Normalize of the raw path (URI.PathOriginal),
	// never on fasthttp's normalised Path, which decodes %2F into a
	// separator; the upstream client sends that same normalised path
	// verbatim (proxy.NewUpstream disables the client's normalisation).
	app.Use(g.handle)
	return app
}

// expect answers an Expect: 100-continue request before its body is read:
// 100 to invite it, or 413 when the declared length is over the limit. The
// refusal carries the usual structured body; fasthttp writes it and closes
// the connection (lingering, see headConn).
func (g *Gateway) expect(ctx *fasthttp.RequestCtx) int {
	if n := ctx.Request.Header.ContentLength(); n <= g.cfg.Limits.MaxRequestBodyBytes {
		return fasthttp.StatusContinue // includes chunked (-1): the limit applies as it is read
	}
	var buf [requestIDMax]byte
	rid := g.ids.fresh(buf[:0])
	writeError(&ctx.Response, errBodyTooLarge, rid)
	ctx.Response.Header.SetCanonical(keyRequestID, rid)
	lingerAfterRefusal(ctx.Conn())
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("request refused", "request_id", string(rid), "code", errBodyTooLarge.Code, "content_length", ctx.Request.Header.ContentLength())
	}
	return fasthttp.StatusRequestEntityTooLarge
}

func (g *Gateway) newAdminApp(reg *prometheus.Registry, admin fiber.Handler) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          g.errorHandler,
		ReadTimeout:           g.cfg.Limits.ReadTimeout,
		WriteTimeout:          g.cfg.Limits.WriteTimeout,
		IdleTimeout:           g.cfg.Limits.IdleTimeout,
	})
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelError)})))
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		switch {
		case g.draining.Load():
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
		case !g.ready.Load():
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "starting"})
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	if admin != nil {
		app.Use("/admin", admin)
	}
	return app
}

// Serve runs the public app on public and the operator app on admin until
// ctx is done, then drains: /readyz answers 503 at once, the public
// listener keeps serving for limits.shutdownDelay (the readiness window)
// and then stops accepting, and Serve waits for in-flight requests (at
// most limits.shutdownTimeout) before closing the admin listener and
// returning.
// It returns an error if a listener failed or the drain timed out. Serve
// may be called once.
func (g *Gateway) Serve(ctx context.Context, public, admin net.Listener) error {
	if !g.served.CompareAndSwap(false, true) {
		return errors.New("gateway: Serve called twice")
	}
	gcOnce.Do(func() { setGCPercent(g.log) })
	public, admin = g.serveTLS(ctx, public, admin)
	pubErr := make(chan error, 1)
	admErr := make(chan error, 1)
	go func() { pubErr <- g.app.Listener(headListener{Listener: public, g: g}) }()
	go func() { admErr <- g.adminApp.Listener(admin) }()

	var failed error
	select {
	case <-ctx.Done():
	case err := <-pubErr:
		failed = fmt.Errorf("gateway: public listener: %w", err)
		pubErr <- nil
	case err := <-admErr:
		failed = fmt.Errorf("gateway: admin listener: %w", err)
		admErr <- nil
	}
	g.draining.Store(true)
	g.ready.Store(false)
	if d := g.cfg.Limits.ShutdownDelay; d > 0 && failed == nil {
		// The readiness window: /readyz says 503 while the public listener
		// still serves, so a load balancer takes the gateway out of
		// rotation before connections are refused.
		g.log.Info("not ready; serving through the readiness window", "delay", d.String())
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case err := <-pubErr:
			t.Stop()
			failed = fmt.Errorf("gateway: public listener: %w", err)
			pubErr <- nil
		}
	}
	g.log.Info("draining", "timeout", g.cfg.Limits.ShutdownTimeout.String())

	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.Limits.ShutdownTimeout)
	defer cancel()
	drainErr := g.app.ShutdownWithContext(sctx)
	_ = public.Close() // in case Serve had not registered it yet
	<-pubErr

	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	_ = g.adminApp.ShutdownWithContext(actx)
	_ = admin.Close()
	<-admErr
	for _, up := range g.gen.Load().ups {
		up.CloseIdle()
	}
	// Shadow exchanges are bounded by their own timeout; wait for them so
	// their samples are stored before the store closes.
	shctx, shcancel := context.WithTimeout(context.Background(), g.cfg.Limits.ShutdownTimeout)
	defer shcancel()
	if err := g.shadow.Close(shctx); err != nil {
		g.log.Warn("closing shadow traffic", "err", err)
	}
	if drainErr != nil {
		drainErr = fmt.Errorf("gateway: drain: %w", drainErr)
	}
	g.log.Info("stopped")
	return errors.Join(failed, drainErr)
}

// Shadow returns the gateway's shadow traffic: its reports
// (Shadow().Report, Shadow().Handler for the admin API).
func (g *Gateway) Shadow() *shadow.Shadow { return g.shadow }

// Breakers returns each upstream's breaker state: "closed", "half-open" or
// "open" (a disabled breaker reads "closed").
func (g *Gateway) Breakers() map[string]string {
	ups := g.gen.Load().ups
	out := make(map[string]string, len(ups))
	for name, up := range ups {
		out[name] = up.State().String()
	}
	return out
}

// RouteStats returns the named route's traffic over the last minute by
// backend ("legacy", "new"); nil for an unknown route.
func (g *Gateway) RouteStats(routeName string) map[string]BackendStats {
	gen := g.gen.Load()
	for i := range gen.routes {
		rs := &gen.routes[i]
		if rs.name != routeName {
			continue
		}
		now := g.now().Unix()
		out := make(map[string]BackendStats, numBackends)
		for b := range numBackends {
			if rs.ups[b] == nil {
				continue
			}
			out[decide.Backend(b).String()] = BackendStats{
				RequestsPerSec: float64(g.stats[i][b].reqs.sum(now)) / statsWindow,
				ErrorsPerSec:   float64(g.stats[i][b].errs.sum(now)) / statsWindow,
			}
		}
		return out
	}
	return nil
}

// now reads Options.Now, or the real clock.
func (g *Gateway) now() time.Time {
	if g.clock != nil {
		return g.clock()
	}
	return time.Now()
}
