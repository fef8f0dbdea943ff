package decide

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/ficus-gw/ficus/config"
)

// Errors returned by the state-changing methods; the admin API maps them to
// status codes with errors.Is.
var (
	// ErrUnknownRoute: no route has that name.
	ErrUnknownRoute = errors.New("unknown route")
	// ErrInvalidPercent: a canary percent outside 0-100 (or NaN).
	ErrInvalidPercent = errors.New("canary percent must be between 0 and 100")
	// ErrNoNewBackend: the route is legacy-only, so it cannot send anyone
	// to a new backend.
	ErrNoNewBackend = errors.New("route has no new backend")
)

// providerReadyTimeout bounds how long New waits for the flag provider's
// first READY. A provider that is not ready yet is not fatal: its routes
// serve their default (legacy) until it is, and each such request counts as
// a flag evaluation error.
const providerReadyTimeout = 5 * time.Second

// RouteState is the live, operator-visible state of one route. It is a copy:
// changing it changes nothing.
type RouteState struct {
	// Name is the route's name (config routes[].name, or the default route's).
	Name string `json:"name"`
	// Legacy and New name the upstreams of the two sides; New is empty for
	// a legacy-only route.
	Legacy string `json:"legacy"`
	New    string `json:"new,omitempty"`
	// Canary is the percent (0-100) of users sent to New.
	Canary float64 `json:"canaryPercent"`
	// Cohort is the sticky-hash key shared by routes that keep a user on
	// one side.
	Cohort string `json:"cohort"`
	// Flag is the OpenFeature flag consulted before the canary, or "".
	Flag string `json:"flag,omitempty"`
	// Pinned is "legacy" or "new" while an operator pins the route, else "".
	Pinned string `json:"pinned,omitempty"`
}

// PinnedBackend returns the pinned backend, if the route is pinned.
func (s RouteState) PinnedBackend() (Backend, bool) {
	if s.Pinned == "" {
		return Legacy, false
	}
	return ParseBackend(s.Pinned)
}

// liveState is the immutable snapshot Decide reads; writers build a new one
// and swap the pointer, so a request sees either the old or the new state,
// never half of a change.
type liveState struct {
	pub       RouteState
	threshold uint32 // bucket < threshold goes to New; percent*100
	pinned    bool
	pin       Backend
}

// route is the fixed part of a route plus its live state.
type route struct {
	name     string
	cohort   string
	flag     string
	hasNew   bool
	state    atomic.Pointer[liveState]
	rejected prometheus.Counter // override_rejected_total{route}
	flagErr  prometheus.Counter // flag_evaluation_errors_total{route}
	canary   prometheus.Gauge   // route_canary_percent{route}
}

// Engine decides, per request, which backend of a route serves it. It is
// safe for concurrent use: Decide never blocks on a writer.
type Engine struct {
	routes []route // config order; the default route last
	byName map[string]int
	writeM sync.Mutex // serialises SetCanary/Pin/Resume so "from" is exact

	// Header names are kept in fasthttp's canonical form, so the hot path
	// reads them with PeekCanonical instead of normalising the name on
	// every request (incoming names are canonicalised once, when parsed).
	userHeader   []byte
	userCookie   string
	userJWTSub   bool
	ctxHeaders   [][]byte // request header names
	ctxAttrs     []string // their evaluation-context attribute names
	ovHeader     []byte
	ovToken      []byte
	ovTokenSums  [][sha256.Size]byte
	ovTrusted    []netip.Prefix
	seed         maphash.Seed
	api          *openfeature.EvaluationAPI // nil without a provider
	client       *openfeature.Client
	flagsChanged openfeature.EventCallback
	cache        atomic.Pointer[flagTable]
	flushes      atomic.Uint64 // cache drops so far
	lastErrLog   atomic.Int64  // Unix ns of the last flag-error log line
	flushed      chan struct{} // signalled (non-blocking) after each cache drop
	cacheHit     prometheus.Counter
	cacheMiss    prometheus.Counter
	cacheFlush   prometheus.Counter
	log          *slog.Logger
}

// NewEngine builds an Engine for cfg's routes (cfg must be validated). It is
// not called New because New is the Backend constant of decision.go. provider
// answers route flags; nil means no flags (routes naming one then fall
// through to their canary). Metrics are registered on reg when it is not
// nil. NewEngine waits up to 5 s for the provider's first READY; one that is not
// ready by then is logged, not fatal. Close releases the provider.
func NewEngine(cfg *config.Config, provider openfeature.FeatureProvider, reg prometheus.Registerer, log *slog.Logger) (*Engine, error) {
	if cfg == nil {
		return nil, errors.New("decide: nil config")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := newMetrics()
	rt := cfg.Routing
	e := &Engine{
		routes:     make([]route, len(cfg.Routes)+1),
		byName:     make(map[string]int, len(cfg.Routes)+1),
		userHeader: canonical(rt.UserKey.Header),
		userCookie: rt.UserKey.Cookie,
		userJWTSub: rt.UserKey.JWTSub,
		ovHeader:   canonical(rt.Override.Header),
		ovToken:    canonical(rt.Override.TokenHeader),
		seed:       maphash.MakeSeed(),
		flushed:    make(chan struct{}, 1),
		cacheHit:   m.cacheLookups.WithLabelValues("hit"),
		cacheMiss:  m.cacheLookups.WithLabelValues("miss"),
		cacheFlush: m.cacheFlushes,
		log:        log,
	}
	for _, h := range rt.ContextHeaders {
		e.ctxHeaders = append(e.ctxHeaders, canonical(h))
		e.ctxAttrs = append(e.ctxAttrs, strings.ToLower(h))
	}
	for _, t := range rt.Override.Tokens {
		if s := t.Secret(); s != "" {
			e.ovTokenSums = append(e.ovTokenSums, sha256.Sum256([]byte(s)))
		} else {
			log.Warn("override token has no value; ignored", "token", t.Name)
		}
	}
	for _, n := range rt.Override.TrustedNetworks {
		p, err := config.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("routing.override.trustedNetworks: %q: %w", n, err)
		}
		e.ovTrusted = append(e.ovTrusted, p.Masked())
	}
	all := append(append([]config.Route(nil), cfg.Routes...), cfg.DefaultRoute)
	for i, r := range all {
		if _, dup := e.byName[r.Name]; dup {
			return nil, fmt.Errorf("decide: duplicate route name %q", r.Name)
		}
		cohort := r.Cohort
		if cohort == "" {
			cohort = r.Name
		}
		dst := &e.routes[i]
		dst.name, dst.cohort, dst.flag, dst.hasNew = r.Name, cohort, r.Flag, r.New != ""
		dst.rejected = m.overrideRejected.WithLabelValues(r.Name)
		dst.flagErr = m.flagErrors.WithLabelValues(r.Name)
		dst.canary = m.canaryPercent.WithLabelValues(r.Name)
		e.byName[r.Name] = i
		st := &liveState{pub: RouteState{
			Name: r.Name, Legacy: r.Legacy, New: r.New, Cohort: cohort, Flag: r.Flag,
		}}
		if err := st.setCanary(r.Canary, r.New != ""); err != nil {
			return nil, fmt.Errorf("decide: route %q: %w", r.Name, err)
		}
		e.routes[i].state.Store(st)
		e.routes[i].canary.Set(st.pub.Canary)
	}
	// Registered last so that a config error leaves reg untouched.
	if reg != nil {
		if err := m.register(reg); err != nil {
			return nil, fmt.Errorf("registering decision metrics: %w", err)
		}
	}
	e.cache.Store(newFlagTable(flagCacheSlots))
	if provider != nil {
		e.startFlags(provider)
	}
	return e, nil
}

// startFlags binds provider to an OpenFeature API instance of this Engine
// alone (isolated.NewAPI), so that two engines (or two tests) never share
// providers, clients or event handlers through the package-global API.
func (e *Engine) startFlags(provider openfeature.FeatureProvider) {
	e.api = isolated.NewAPI()
	e.client = e.api.NewClient()
	cb := func(d openfeature.EventDetails) { e.flushFlags(d) }
	e.flagsChanged = &cb
	// Every configuration change can move any cached answer: flagd's event
	// lists every flag, and targeting rules are opaque to us. Drop it all.
	// READY is not an occasion: errors are never cached, and a provider
	// that resyncs after an outage reports changed flags as a change.
	e.client.AddHandler(openfeature.ProviderConfigChange, e.flagsChanged)
	ctx, cancel := context.WithTimeout(context.Background(), providerReadyTimeout)
	defer cancel()
	if err := e.api.SetProviderAndWait(ctx, provider); err != nil {
		// A flag server that is down at start must not keep the gateway
		// down: flagged routes serve legacy (counted as flag errors) until
		// the provider reports READY.
		e.log.Error("flag provider not ready; flagged routes serve legacy until it is", "provider", provider.Metadata().Name, "err", err)
	}
}

// flushFlags drops every cached flag answer.
func (e *Engine) flushFlags(d openfeature.EventDetails) {
	e.cache.Store(newFlagTable(flagCacheSlots))
	e.flushes.Add(1)
	e.cacheFlush.Inc()
	e.log.Info("flag configuration changed; evaluation cache dropped", "provider", d.ProviderName, "flags", len(d.FlagChanges))
	select {
	case e.flushed <- struct{}{}:
	default:
	}
}

// Close releases the flag provider. Decide keeps working after Close, as if
// every flag evaluation failed.
func (e *Engine) Close() error {
	if e.api == nil {
		return nil
	}
	e.client.RemoveHandler(openfeature.ProviderConfigChange, e.flagsChanged)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.api.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting down flag provider: %w", err)
	}
	return nil
}

// Decide returns the backend for one request to route (an index into
// cfg.Routes; len(cfg.Routes) is the default route). In order: a valid
// override header, an operator pin, the route's flag, the sticky canary,
// else legacy. It does not allocate once the flag answer is cached, and
// never fails: anything unexpected yields legacy. c must be the live request
// context; nothing of it is retained.
func (e *Engine) Decide(c *fiber.Ctx, route int, requestID string) Decision {
	if route < 0 || route >= len(e.routes) {
		return Decision{Backend: Legacy, Reason: ReasonDefault}
	}
	r := &e.routes[route]
	st := r.state.Load()
	if r.hasNew {
		if d, ok := e.override(c, r, requestID); ok {
			return d
		}
	}
	if st.pinned {
		return Decision{Backend: st.pin, Reason: ReasonPinned}
	}
	if !r.hasNew {
		return Decision{Backend: Legacy, Reason: ReasonDefault}
	}
	key, bearer := e.userKey(c)
	if len(key) == 0 && len(bearer) > 0 {
		// Declared here so that requests without a JWT do not pay for
		// zeroing the buffer; the slice keeps it alive on the stack.
		var buf [maxJWTPayload]byte
		key = jwtSubject(bearer, buf[:])
	}
	if r.flag != "" && e.client != nil {
		switch code := e.flagAnswer(c, r, key, requestID); code {
		case answerLegacy:
			return Decision{Backend: Legacy, Reason: ReasonFlag}
		case answerNew:
			return Decision{Backend: New, Reason: ReasonFlag}
		case answerError:
			return Decision{Backend: Legacy, Reason: ReasonError}
		}
	}
	if st.threshold > 0 {
		var b uint32
		if len(key) > 0 {
			b = bucket(key, r.cohort)
		} else {
			b = bucketString(requestID, r.cohort)
		}
		if b < st.threshold {
			return Decision{Backend: New, Reason: ReasonCanary}
		}
		return Decision{Backend: Legacy, Reason: ReasonCanary}
	}
	return Decision{Backend: Legacy, Reason: ReasonDefault}
}

// override honours the tester's header when it names a backend and the
// request carries a valid token or comes from a trusted network. A header
// that is present but not honoured is counted and otherwise ignored.
func (e *Engine) override(c *fiber.Ctx, r *route, requestID string) (Decision, bool) {
	if len(e.ovHeader) == 0 {
		return Decision{}, false
	}
	v := c.Request().Header.PeekCanonical(e.ovHeader)
	if len(v) == 0 {
		return Decision{}, false
	}
	b, known := parseBackendBytes(v)
	if !known || !e.overrideAllowed(c) {
		r.rejected.Inc()
		if e.log.Enabled(context.Background(), slog.LevelDebug) {
			e.log.Debug("override header ignored", "route", r.name, "request_id", requestID, "known_backend", known)
		}
		return Decision{}, false
	}
	return Decision{Backend: b, Reason: ReasonOverride}, true
}

func (e *Engine) overrideAllowed(c *fiber.Ctx) bool {
	if tok := c.Request().Header.PeekCanonical(e.ovToken); len(tok) > 0 && len(e.ovTokenSums) > 0 {
		// Comparing digests keeps the compare constant-time in the token's
		// length too; every token is compared so timing says nothing about
		// which one (if any) matched.
		sum := sha256.Sum256(tok)
		match := 0
		for i := range e.ovTokenSums {
			match |= subtle.ConstantTimeCompare(sum[:], e.ovTokenSums[i][:])
		}
		if match == 1 {
			return true
		}
	}
	if len(e.ovTrusted) == 0 {
		return false
	}
	addr, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return false
	}
	addr = addr.Unmap()
	for _, p := range e.ovTrusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func parseBackendBytes(v []byte) (Backend, bool) {
	switch string(v) { // no allocation: the compiler compares in place
	case "new":
		return New, true
	case "legacy":
		return Legacy, true
	}
	return Legacy, false
}

// State returns the live state of the named route.
func (e *Engine) State(name string) (RouteState, bool) {
	i, ok := e.byName[name]
	if !ok {
		return RouteState{}, false
	}
	return e.routes[i].state.Load().pub, true
}

// States returns every route's live state in config order, the default
// route last.
func (e *Engine) States() []RouteState {
	out := make([]RouteState, len(e.routes))
	for i := range e.routes {
		out[i] = e.routes[i].state.Load().pub
	}
	return out
}

// SetCanary changes the percent of users a route sends to its new backend,
// effective for the next request. Raising it only moves users from legacy
// to new (buckets are fixed per user). It returns the state before.
func (e *Engine) SetCanary(name string, percent float64) (RouteState, error) {
	return e.change(name, func(st *liveState, hasNew bool) error {
		return st.setCanary(percent, hasNew)
	})
}

// Pin sends all of a route's traffic (bar valid overrides) to b until
// Resume. It returns the state before.
func (e *Engine) Pin(name string, b Backend) (RouteState, error) {
	return e.change(name, func(st *liveState, hasNew bool) error {
		if b != Legacy && b != New {
			return fmt.Errorf("unknown backend %d", b)
		}
		if b == New && !hasNew {
			return fmt.Errorf("%w: cannot pin route %q to new", ErrNoNewBackend, name)
		}
		st.pinned, st.pin, st.pub.Pinned = true, b, b.String()
		return nil
	})
}

// Resume removes a pin, returning the route to its flag and canary. Resuming
// an unpinned route changes nothing and is not an error. It returns the
// state before.
func (e *Engine) Resume(name string) (RouteState, error) {
	return e.change(name, func(st *liveState, _ bool) error {
		st.pinned, st.pin, st.pub.Pinned = false, Legacy, ""
		return nil
	})
}

func (e *Engine) change(name string, edit func(st *liveState, hasNew bool) error) (RouteState, error) {
	i, ok := e.byName[name]
	if !ok {
		return RouteState{}, fmt.Errorf("%w: %q", ErrUnknownRoute, name)
	}
	r := &e.routes[i]
	e.writeM.Lock()
	defer e.writeM.Unlock()
	old := r.state.Load()
	next := *old
	if err := edit(&next, r.hasNew); err != nil {
		return old.pub, err
	}
	r.state.Store(&next)
	r.canary.Set(next.pub.Canary)
	return old.pub, nil
}

func (st *liveState) setCanary(percent float64, hasNew bool) error {
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return fmt.Errorf("%w (got %v)", ErrInvalidPercent, percent)
	}
	if percent > 0 && !hasNew {
		return fmt.Errorf("%w: a canary needs routes[].new", ErrNoNewBackend)
	}
	st.pub.Canary = percent
	st.threshold = uint32(math.Round(percent * bucketsPerPercent))
	return nil
}

// canonical returns a header name in fasthttp's canonical form
// ("x-user-id" -> "X-User-Id"); nil for "" (not configured).
func canonical(name string) []byte {
	if name == "" {
		return nil
	}
	return fasthttp.AppendNormalizedHeaderKey(nil, name)
}
