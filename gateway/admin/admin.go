// Package admin is the operator API of the gateway: live route state,
// canary and pin changes (each written to the control plane, versioned and
// audited with who, when and why), the audit log and its Grafana
// annotations, plus the Go client and table renderers behind `ficus ctl`.
//
// The control plane (gateway/controlplane) holds the live state; the
// configuration file declares the routes and their initial values. The
// API keeps the decision engine equal to the control plane: it applies
// every newer state version (Run), and its own writes at once.
//
// Mount it on the admin listener (127.0.0.1:8090 by default), never on the
// public one:
//
//	adminApp.Use(admin.Prefix, api.Handler())
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/decide"
)

// Prefix is where the API lives on the admin listener.
const Prefix = "/admin"

// Engine is what the API needs from the decision engine
// (*decide.Engine implements it).
type Engine interface {
	States() []decide.RouteState
	SetCanary(route string, percent float64) (from decide.RouteState, err error)
	Pin(route string, b decide.Backend) (from decide.RouteState, err error)
	Resume(route string) (from decide.RouteState, err error)
}

var _ Engine = (*decide.Engine)(nil)

// BackendStats is one backend's traffic over the last minute. Its fields
// mirror the gateway's own stats type, so a value of that type converts
// with a plain admin.BackendStats(v).
type BackendStats struct {
	// RequestsPerSec is requests per second.
	RequestsPerSec float64 `json:"requestsPerSec"`
	// ErrorsPerSec is responses with status >= 500 per second.
	ErrorsPerSec float64 `json:"errorsPerSec"`
}

// Options are the API's dependencies.
type Options struct {
	// Engine holds the live route state. Required.
	Engine Engine
	// Breakers returns each upstream's breaker state ("closed",
	// "half-open", "open"). Nil: breaker states are not shown.
	Breakers func() map[string]string
	// Stats returns a route's last-minute rates keyed by backend ("legacy",
	// "new"). Nil: rates are shown as zero.
	Stats func(route string) map[string]BackendStats
	// Tokens may call the API (config admin.tokens). None: every call is 401.
	Tokens []config.Token
	// Store is the control plane: live route state and the audit log.
	// Required.
	Store controlplane.Store
	// StoreName names the store in errors and status ("sqlite",
	// "postgres"). Default "control plane".
	StoreName string
	// SyncInterval is the safety-net version check (default 1 s).
	SyncInterval time.Duration
	// StateCache is a file keeping a copy of the last state applied, so
	// that Restore can start this replica while the store is unreachable
	// (controlplane.SyncOptions.Cache). Empty: no copy; a replica then
	// cannot start without the store.
	StateCache string
	// Registry gets the ficus_controlplane_* sync metrics. Nil: none.
	Registry prometheus.Registerer
	// Leader says whether this replica leads the fleet; shown in the
	// status. Nil: not shown.
	Leader controlplane.Leadership
	// Flags reports the flag source's reload state; shown in the status.
	// Nil: not shown.
	Flags func() FlagsStatus
	// Logger receives one line per change and per refused call. Default: discard.
	Logger *slog.Logger
	// Now stamps the last-sync metric. Default time.Now.
	Now func() time.Time
	// Reports are further read-only endpoints by first path segment:
	// "retire" serves GET /admin/retire and GET /admin/retire/*. They sit
	// behind the same authentication and need the read scope. The handler
	// sees the full path and writes its own response.
	Reports map[string]fiber.Handler
	// Rollouts is the autopilot, served under /admin/rollouts (see
	// rollout.go). Nil: those endpoints answer 404 NO_AUTOPILOT.
	Rollouts Rollouts
	// Reload re-reads the configuration file (POST /admin/reload, write
	// scope; reload.go). Nil: the endpoint answers that nothing reloads.
	Reload ReloadFunc
}

// API serves the admin endpoints. Changes are serialised by the control
// plane (compare-and-set on the state version), so every audit entry's
// old value is exact, across replicas too.
type API struct {
	engine    Engine
	breakers  func() map[string]string
	stats     func(string) map[string]BackendStats
	tokens    []token
	store     controlplane.Store
	storeName string
	syncer    *controlplane.Syncer
	leader    controlplane.Leadership
	flags     func() FlagsStatus
	log       *slog.Logger
	reports   map[string]fiber.Handler
	rollouts  Rollouts
	reload    ReloadFunc
	// initial is each route's canary percent from the configuration: what
	// applies while the control plane holds none.
	initial map[string]float64
	applyMu sync.Mutex // one snapshot applied to the engine at a time
	app     *fiber.App // the API's own router (see router)
}

type token struct {
	name  string
	sum   [sha256.Size]byte
	read  bool
	write bool
}

// New checks opts and returns the API. The engine must still hold the
// configuration's values: they are what applies to a route where the
// control plane holds none. Call Restore before serving, then Run.
func New(opts Options) (*API, error) {
	if opts.Engine == nil {
		return nil, errors.New("admin: Options.Engine is required")
	}
	if opts.Store == nil {
		return nil, errors.New("admin: Options.Store is required (live state and the audit log live there)")
	}
	a := &API{
		engine: opts.Engine, breakers: opts.Breakers, stats: opts.Stats,
		store: opts.Store, storeName: opts.StoreName, leader: opts.Leader, flags: opts.Flags,
		log: opts.Logger, reports: opts.Reports, rollouts: opts.Rollouts, reload: opts.Reload, initial: map[string]float64{},
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.storeName == "" {
		a.storeName = "control plane"
	}
	for _, st := range a.engine.States() {
		a.initial[st.Name] = st.Canary
	}
	var err error
	a.syncer, err = controlplane.NewSyncer(controlplane.SyncOptions{
		Store: a.store, Apply: a.applySnapshot, Interval: opts.SyncInterval,
		Registry: opts.Registry, Logger: a.log, Now: opts.Now, Cache: opts.StateCache,
	})
	if err != nil {
		return nil, fmt.Errorf("admin: control plane metrics: %w", err)
	}
	a.app = a.router()
	for _, t := range opts.Tokens {
		s := t.Secret()
		if s == "" {
			a.log.Warn("admin token has no value; it cannot be used", "token", t.Name)
			continue
		}
		tk := token{name: t.Name, sum: sha256.Sum256([]byte(s))}
		for _, sc := range t.Scopes {
			tk.read = tk.read || sc == "read"
			tk.write = tk.write || sc == "write"
		}
		a.tokens = append(a.tokens, tk)
	}
	return a, nil
}

// Error codes of the admin API; stable, clients branch on them.
const (
	CodeUnauthorized     = "UNAUTHORIZED"       // 401: no or unknown token
	CodeForbidden        = "FORBIDDEN"          // 403: token lacks the scope
	CodeNotFound         = "NOT_FOUND"          // 404: no such route or endpoint
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED" // 405
	CodeMalformed        = "MALFORMED_REQUEST"  // 400: body is not the expected JSON
	CodeReasonRequired   = "REASON_REQUIRED"    // 400: every change needs a reason
	CodeInvalidPercent   = "INVALID_PERCENT"    // 400: percent missing or outside 0-100
	CodeInvalidBackend   = "INVALID_BACKEND"    // 400: backend is not legacy or new
	CodeValidation       = "VALIDATION_FAILED"  // 400: another field out of range
	CodeNoNewBackend     = "NO_NEW_BACKEND"     // 409: the route has no new side
	CodeInternal         = "INTERNAL"           // 500
	// CodeStateConflict (409): If-Match named a state version older than
	// the route's last change; details carry the current state.
	CodeStateConflict = "STATE_CONFLICT"
	// CodeControlPlaneUnavailable (503): the control plane could not be
	// reached; nothing was changed, routing continues on the last known
	// state.
	CodeControlPlaneUnavailable = "CONTROL_PLANE_UNAVAILABLE"
)

// maxBody bounds a request body; admin bodies are a few dozen bytes.
const maxBody = 16 << 10

// maxReason bounds a change reason, in bytes.
const maxReason = 1000

type scope int

const (
	scopeRead scope = iota
	scopeWrite
)

type reqCtx struct {
	id    string
	actor string
	tk    token
}

// serveFunc is one endpoint; route is the :name path parameter, copied.
type serveFunc func(a *API, c *fiber.Ctx, rc *reqCtx, route string) error

// reqKey is where the authenticated request's context lives in Locals.
type reqKey struct{}

// router builds the API's routes on Fiber's own router: one middleware
// authenticates (before routing, so an unknown path still needs a token),
// each endpoint states the scope it needs, and the router's own 404 and
// 405 are answered in the API's error format.
func (a *API) router() *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			rc, _ := c.Locals(reqKey{}).(*reqCtx)
			if rc == nil {
				rc = &reqCtx{id: requestID(c)}
			}
			var fe *fiber.Error
			switch {
			case errors.As(err, &fe) && fe.Code == http.StatusNotFound:
				return a.fail(c, rc, http.StatusNotFound, CodeNotFound, "no such admin endpoint; see GET /admin/routes")
			case errors.As(err, &fe) && fe.Code == http.StatusMethodNotAllowed:
				return a.fail(c, rc, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed on this endpoint")
			}
			a.log.Error("admin handler failed", "request_id", rc.id, "err", err)
			return a.fail(c, rc, http.StatusInternalServerError, CodeInternal, "internal error; quote the requestId when reporting it")
		},
	})
	app.Use(func(c *fiber.Ctx) (err error) {
		rc := &reqCtx{id: requestID(c)}
		c.Locals(reqKey{}, rc)
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("admin handler panic", "panic", p, "request_id", rc.id, "stack", string(debug.Stack()))
				err = a.fail(c, rc, http.StatusInternalServerError, CodeInternal, "internal error; quote the requestId when reporting it")
			}
		}()
		tk, ok := a.authenticate(c)
		if !ok {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ficus-admin"`)
			a.log.Info("admin call refused: no valid token", "request_id", rc.id, "path", c.Path(), "peer", c.IP())
			return a.fail(c, rc, http.StatusUnauthorized, CodeUnauthorized, "send a valid admin token: Authorization: Bearer <token>")
		}
		rc.actor, rc.tk = tk.name, tk
		return c.Next()
	})
	r := app.Group(Prefix)
	r.Get("/routes", a.endpoint(scopeRead, (*API).listRoutes))
	r.Get("/routes/:name", a.endpoint(scopeRead, (*API).getRoute))
	r.Put("/routes/:name/canary", a.endpoint(scopeWrite, (*API).setCanary))
	r.Post("/routes/:name/pin", a.endpoint(scopeWrite, (*API).pin))
	r.Post("/routes/:name/resume", a.endpoint(scopeWrite, (*API).resume))
	r.Get("/status", a.endpoint(scopeRead, (*API).status))
	r.Get("/audit", a.endpoint(scopeRead, (*API).listAudit))
	r.Get("/annotations", a.endpoint(scopeRead, (*API).annotations))
	a.rolloutRoutes(r)
	r.Post("/reload", a.endpoint(scopeWrite, (*API).reloadConfig))
	for name, h := range a.reports {
		serve := func(_ *API, c *fiber.Ctx, _ *reqCtx, _ string) error { return h(c) }
		r.Get("/"+name, a.endpoint(scopeRead, serve))
		r.Get("/"+name+"/*", a.endpoint(scopeRead, serve))
	}
	return app
}

// endpoint checks the token's scope, then serves.
func (a *API) endpoint(need scope, serve serveFunc) fiber.Handler {
	return func(c *fiber.Ctx) error {
		rc := c.Locals(reqKey{}).(*reqCtx)
		if (need == scopeWrite && !rc.tk.write) || (need == scopeRead && !rc.tk.read) {
			name := "read"
			if need == scopeWrite {
				name = "write"
			}
			a.log.Info("admin call refused: missing scope", "request_id", rc.id, "actor", rc.actor, "scope", name, "path", c.Path())
			return a.fail(c, rc, http.StatusForbidden, CodeForbidden, fmt.Sprintf("token %q lacks the %s scope", rc.actor, name))
		}
		// Copied: fiber's parameters alias a buffer that is reused after
		// the handler returns, and the route name ends up in logs and
		// audit rows.
		return serve(a, c, rc, strings.Clone(c.Params("name")))
	}
}

// Handler returns the fiber handler serving every path under Prefix. It
// answers every request itself (errors included, as
// {"code","message","requestId"}); it never calls c.Next.
func (a *API) Handler() fiber.Handler {
	serve := a.app.Handler()
	return func(c *fiber.Ctx) error {
		serve(c.Context())
		return nil
	}
}

// authenticate finds the bearer token among the configured ones. Every
// token is compared, as SHA-256 digests in constant time, so neither the
// presented token's length nor which token matched shows in the timing.
func (a *API) authenticate(c *fiber.Ctx) (token, bool) {
	h := c.Get(fiber.HeaderAuthorization)
	if len(h) < 8 || !strings.EqualFold(h[:7], "Bearer ") {
		return token{}, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(h[7:])))
	found := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return token{}, false
	}
	return a.tokens[found], true
}

// requestID reuses the id set by the request-id middleware, or a valid
// inbound X-Request-Id, or makes one; it is echoed on the response.
func requestID(c *fiber.Ctx) string {
	id := apierr.RequestID(c)
	if id == "" {
		if h := c.Get(apierr.RequestIDHeader); apierr.ValidRequestID(h) {
			id = strings.Clone(h)
		} else {
			id = uuid.NewString()
		}
	}
	c.Set(apierr.RequestIDHeader, id)
	return id
}

func (a *API) fail(c *fiber.Ctx, rc *reqCtx, status int, code, msg string) error {
	return c.Status(status).JSON(apierr.Body{Code: code, Message: msg, RequestID: rc.id})
}

func (a *API) failDetails(c *fiber.Ctx, rc *reqCtx, status int, code, msg string, details any) error {
	return c.Status(status).JSON(apierr.Body{Code: code, Message: msg, Details: details, RequestID: rc.id})
}

// RouteView is one route as the API shows it.
type RouteView struct {
	Name          string  `json:"name"`
	CanaryPercent float64 `json:"canaryPercent"`
	// CanarySource and PinSource say where the live value comes from:
	// SourceConfig or SourceControlPlane.
	CanarySource string        `json:"canarySource"`
	Cohort       string        `json:"cohort"`
	Flag         string        `json:"flag,omitempty"`
	Pinned       string        `json:"pinned,omitempty"`
	PinSource    string        `json:"pinSource"`
	Backends     []BackendView `json:"backends"`
	// Version is the state version of the route's last change in the
	// control plane (0: never changed); StateVersion is the version this
	// replica routes on. Either is a valid If-Match for a change.
	Version      int64 `json:"version"`
	StateVersion int64 `json:"stateVersion"`
	// CohortPercent and Rollout are the autopilot's state, when it has any.
	CohortPercent *float64              `json:"cohortPercent,omitempty"`
	Rollout       *controlplane.Rollout `json:"rollout,omitempty"`
}

// Where a live value comes from.
const (
	SourceConfig       = "config"
	SourceControlPlane = "controlPlane"
)

// BackendView is one side of a route.
type BackendView struct {
	// Backend is "legacy" or "new".
	Backend string `json:"backend"`
	// Upstream names the config upstream serving this side.
	Upstream string `json:"upstream"`
	// Breaker is the upstream's breaker state, "" when unknown.
	Breaker string `json:"breaker,omitempty"`
	BackendStats
}

func (a *API) view(st decide.RouteState, breakers map[string]string) RouteView {
	v := RouteView{Name: st.Name, CanaryPercent: st.Canary, Cohort: st.Cohort, Flag: st.Flag, Pinned: st.Pinned,
		CanarySource: SourceConfig, PinSource: SourceConfig}
	snap, _ := a.syncer.Current()
	v.StateVersion = snap.Version
	if cp, ok := snap.Routes[st.Name]; ok {
		v.Version, v.CohortPercent, v.Rollout = cp.Version, cp.CohortPercent, cp.Rollout
		if cp.Canary != nil {
			v.CanarySource = SourceControlPlane
		}
		if cp.Pin != nil {
			v.PinSource = SourceControlPlane
		}
	}
	var stats map[string]BackendStats
	if a.stats != nil {
		stats = a.stats(st.Name)
	}
	add := func(b decide.Backend, upstream string) {
		v.Backends = append(v.Backends, BackendView{
			Backend: b.String(), Upstream: upstream, Breaker: breakers[upstream], BackendStats: stats[b.String()],
		})
	}
	add(decide.Legacy, st.Legacy)
	if st.New != "" {
		add(decide.New, st.New)
	}
	return v
}

func (a *API) breakerStates() map[string]string {
	if a.breakers == nil {
		return nil
	}
	return a.breakers()
}

func (a *API) listRoutes(c *fiber.Ctx, _ *reqCtx, _ string) error {
	br := a.breakerStates()
	states := a.engine.States()
	out := make([]RouteView, 0, len(states))
	for _, st := range states {
		out = append(out, a.view(st, br))
	}
	return c.JSON(out)
}

func (a *API) lookup(name string) (decide.RouteState, bool) {
	for _, st := range a.engine.States() {
		if st.Name == name {
			return st, true
		}
	}
	return decide.RouteState{}, false
}

func (a *API) getRoute(c *fiber.Ctx, rc *reqCtx, name string) error {
	st, ok := a.lookup(name)
	if !ok {
		return a.unknownRoute(c, rc, name)
	}
	v := a.view(st, a.breakerStates())
	c.Set(fiber.HeaderETag, strconv.Quote(strconv.FormatInt(v.StateVersion, 10)))
	return c.JSON(v)
}

func (a *API) unknownRoute(c *fiber.Ctx, rc *reqCtx, name string) error {
	return a.fail(c, rc, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no route named %q; list routes with GET /admin/routes", name))
}

func (a *API) decodeChange(c *fiber.Ctx, rc *reqCtx, dst any) (bool, error) {
	body := c.Body()
	if len(body) > maxBody {
		return false, a.fail(c, rc, http.StatusRequestEntityTooLarge, CodeMalformed, fmt.Sprintf("body larger than %d bytes", maxBody))
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return false, a.fail(c, rc, http.StatusBadRequest, CodeMalformed, "body must be a JSON object: "+err.Error())
	}
	if dec.More() {
		return false, a.fail(c, rc, http.StatusBadRequest, CodeMalformed, "body must be one JSON object")
	}
	return true, nil
}

// reasonOnly reads a change whose body is only {"reason": "..."} and
// checks the reason, as checkReason does.
func (a *API) reasonOnly(c *fiber.Ctx, rc *reqCtx) (string, bool, error) {
	var b struct {
		Reason string `json:"reason"`
	}
	if ok, err := a.decodeChange(c, rc, &b); !ok {
		return "", false, err
	}
	return a.checkReason(c, rc, b.Reason)
}

func (a *API) checkReason(c *fiber.Ctx, rc *reqCtx, reason string) (string, bool, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", false, a.fail(c, rc, http.StatusBadRequest, CodeReasonRequired, `every change needs a reason, e.g. {"reason":"error rate fine for 1h"}`)
	case len(reason) > maxReason:
		return "", false, a.fail(c, rc, http.StatusBadRequest, CodeValidation, fmt.Sprintf("reason longer than %d bytes", maxReason))
	}
	return reason, true, nil
}

func (a *API) setCanary(c *fiber.Ctx, rc *reqCtx, route string) error {
	var b struct {
		Percent *float64 `json:"percent"`
		Reason  string   `json:"reason"`
	}
	if ok, err := a.decodeChange(c, rc, &b); !ok {
		return err
	}
	reason, ok, err := a.checkReason(c, rc, b.Reason)
	if !ok {
		return err
	}
	if b.Percent == nil || math.IsNaN(*b.Percent) || *b.Percent < 0 || *b.Percent > 100 {
		return a.fail(c, rc, http.StatusBadRequest, CodeInvalidPercent, `give "percent" between 0 and 100 (fractions allowed, e.g. 0.5)`)
	}
	p := *b.Percent
	return a.write(c, rc, ActionCanary, route, reason, controlplane.Patch{Canary: &p}, p > 0)
}

func (a *API) pin(c *fiber.Ctx, rc *reqCtx, route string) error {
	var b struct {
		Backend string `json:"backend"`
		Reason  string `json:"reason"`
	}
	if ok, err := a.decodeChange(c, rc, &b); !ok {
		return err
	}
	reason, ok, err := a.checkReason(c, rc, b.Reason)
	if !ok {
		return err
	}
	backend, known := decide.ParseBackend(b.Backend)
	if !known {
		return a.fail(c, rc, http.StatusBadRequest, CodeInvalidBackend, fmt.Sprintf(`"backend" must be "legacy" or "new" (got %q)`, b.Backend))
	}
	pin := backend.String()
	return a.write(c, rc, ActionPin, route, reason, controlplane.Patch{Pin: &pin}, backend == decide.New)
}

func (a *API) resume(c *fiber.Ctx, rc *reqCtx, route string) error {
	reason, ok, err := a.reasonOnly(c, rc)
	if !ok {
		return err
	}
	none := controlplane.PinNone
	return a.write(c, rc, ActionResume, route, reason, controlplane.Patch{Pin: &none}, false)
}

// Actions, as logged.
const (
	ActionCanary = "canary"
	ActionPin    = "pin"
	ActionResume = "resume"
)

// ChangeResult answers a change: whether anything changed (setting a
// value a route already has is not a change and leaves no audit entry),
// the audit entries it wrote, the state version after it and the route as
// it is now.
type ChangeResult struct {
	Changed      bool         `json:"changed"`
	Action       string       `json:"action"`
	StateVersion int64        `json:"stateVersion"`
	Audit        []AuditEntry `json:"audit"`
	Route        RouteView    `json:"route"`
}

// ConflictDetails is the details of a STATE_CONFLICT answer.
type ConflictDetails struct {
	// Expected is the If-Match version the writer sent.
	Expected int64 `json:"expected"`
	// Current is the route now (its Version is the version to expect);
	// StateVersion the control plane's version now.
	Current      RouteView `json:"current"`
	StateVersion int64     `json:"stateVersion"`
}

// ifMatch reads the expected state version from If-Match: `12`, `"12"`
// or `W/"12"`; absent or `*` means "whatever it is now".
func (a *API) ifMatch(c *fiber.Ctx, rc *reqCtx) (int64, bool, error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" || h == "*" {
		return 0, true, nil
	}
	v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, false, a.fail(c, rc, http.StatusBadRequest, CodeValidation,
			fmt.Sprintf("If-Match must be a state version (a positive integer, as shown by GET /admin/routes), got %q", h))
	}
	return n, true, nil
}

// write stores one change in the control plane and makes it live here at
// once (other replicas follow within their sync latency). needsNew: the
// change sends users to the new side, so the route must have one.
func (a *API) write(c *fiber.Ctx, rc *reqCtx, action, route, reason string, patch controlplane.Patch, needsNew bool) error {
	expect, ok, err := a.ifMatch(c, rc)
	if !ok {
		return err
	}
	st, known := a.lookup(route)
	if !known {
		return a.unknownRoute(c, rc, route)
	}
	if needsNew && st.New == "" {
		return a.fail(c, rc, http.StatusConflict, CodeNoNewBackend, fmt.Sprintf("route %q has no new backend (routes[].new in the config); only legacy is possible", route))
	}
	ctx, cancel := dbContext()
	defer cancel()
	res, err := a.store.Apply(ctx, controlplane.Change{
		Route: route, Set: patch, ExpectVersion: expect, Actor: rc.actor, Reason: reason, RequestID: rc.id,
		Config: a.configValues(route),
	})
	var conflict *controlplane.ConflictError
	switch {
	case errors.As(err, &conflict):
		a.log.Info("admin change refused: stale state version", "request_id", rc.id, "actor", rc.actor, "route", route,
			"action", action, "expected", expect, "route_version", conflict.Current.Version)
		_ = a.syncer.Sync(ctx) // show the state that won
		cur, _ := a.lookup(route)
		view := a.view(cur, a.breakerStates())
		return a.failDetails(c, rc, http.StatusConflict, CodeStateConflict,
			fmt.Sprintf("route %q changed at state version %d, after the version %d you expected; review the current state and retry with If-Match: %d",
				route, conflict.Current.Version, expect, conflict.Current.Version),
			ConflictDetails{Expected: expect, Current: view, StateVersion: conflict.Version})
	case errors.Is(err, controlplane.ErrUnavailable):
		a.log.Error("admin change failed: control plane unreachable", "request_id", rc.id, "actor", rc.actor, "route", route, "action", action, "store", a.storeName, "err", err)
		return a.fail(c, rc, http.StatusServiceUnavailable, CodeControlPlaneUnavailable,
			fmt.Sprintf("the control plane (%s) is unreachable, so nothing was changed; routing continues on the last known state. Cause: %v", a.storeName, err))
	case errors.Is(err, controlplane.ErrInvalid):
		return a.fail(c, rc, http.StatusBadRequest, CodeValidation, err.Error())
	case err != nil:
		a.log.Error("admin change failed", "request_id", rc.id, "route", route, "action", action, "err", err)
		return a.fail(c, rc, http.StatusInternalServerError, CodeInternal, "change failed; quote the requestId when reporting it")
	}
	if res.Changed {
		if err := a.syncer.Sync(ctx); err != nil {
			// Written, but the re-read failed: make this route's new state
			// live now; the next sync brings the rest.
			a.syncer.Observe(route, res.State, res.Version)
		}
		a.log.Info("route changed", "request_id", rc.id, "actor", rc.actor, "route", route, "action", action,
			"state_version", res.Version, "reason", reason, "changes", len(res.Audit))
	}
	now, _ := a.lookup(route)
	return c.JSON(ChangeResult{Changed: res.Changed, Action: action, StateVersion: res.Version, Audit: res.Audit, Route: a.view(now, a.breakerStates())})
}

// configValues are the configuration's values for route: live where the
// control plane holds none.
func (a *API) configValues(route string) controlplane.Patch {
	c := a.initial[route]
	none := controlplane.PinNone
	return controlplane.Patch{Canary: &c, Pin: &none}
}

// applySnapshot makes snap the engine's live state: a value the control
// plane holds wins, else the configuration's. Routes the configuration no
// longer declares are ignored; a value the configuration no longer allows
// (a canary on a route without a new side) is logged and skipped.
func (a *API) applySnapshot(snap controlplane.Snapshot) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	for _, st := range a.engine.States() {
		cp := snap.Routes[st.Name]
		want := a.initial[st.Name]
		if cp.Canary != nil {
			want = *cp.Canary
		}
		if want != st.Canary {
			if _, err := a.engine.SetCanary(st.Name, want); err != nil {
				a.log.Warn("control plane canary not applied", "route", st.Name, "percent", want, "state_version", snap.Version, "err", err)
			}
		}
		if pin := cp.PinValue(); pin != st.Pinned {
			var err error
			if b, ok := decide.ParseBackend(pin); ok {
				_, err = a.engine.Pin(st.Name, b)
			} else {
				_, err = a.engine.Resume(st.Name)
			}
			if err != nil {
				a.log.Warn("control plane pin not applied", "route", st.Name, "pin", pin, "state_version", snap.Version, "err", err)
			}
		}
	}
}

// Restore reads the control plane and makes its state live; call it once
// before serving. When the control plane cannot be read it falls back to
// the cached copy of the last state this replica applied (SyncOptions.Cache)
// and fails only when there is none: a replica never starts on the
// configuration's values while the fleet routes on another state.
func (a *API) Restore(ctx context.Context) error {
	if err := a.syncer.Sync(ctx); err != nil {
		snap, at, cerr := a.syncer.RestoreCache()
		if cerr != nil {
			return fmt.Errorf("reading the control plane (%s): %w (and %w)", a.storeName, err, cerr)
		}
		a.log.Warn("control plane unreachable at start; routing on the cached copy of the last known state until it answers",
			"store", a.storeName, "state_version", snap.Version, "saved_at", at.Format(time.RFC3339), "err", err)
		return nil
	}
	snap, _ := a.syncer.Current()
	a.log.Info("route state restored from the control plane", "store", a.storeName, "state_version", snap.Version, "routes_with_state", len(snap.Routes))
	return nil
}

// Run keeps the live state equal to the control plane's until ctx ends.
func (a *API) Run(ctx context.Context) error { return a.syncer.Run(ctx) }

// Syncer exposes the control plane synchroniser (its Current snapshot).
func (a *API) Syncer() *controlplane.Syncer { return a.syncer }

// Status is this replica's view of the control plane.
type Status struct {
	// Store is "sqlite" or "postgres".
	Store string `json:"store"`
	// Connected: the control plane answered the last check. While false,
	// routing continues on the last known state and changes answer 503.
	Connected    bool         `json:"connected"`
	StateVersion int64        `json:"stateVersion"`
	Leader       *bool        `json:"leader,omitempty"`
	Flags        *FlagsStatus `json:"flags,omitempty"`
}

// FlagsStatus is the flag source's reload state.
type FlagsStatus struct {
	// Source is the flag file or flagd address; "" without flags.
	Source string `json:"source"`
	// SHA256 is the hex digest of the flag file that is serving.
	SHA256 string `json:"sha256,omitempty"`
	// LoadedAt is when the serving flags were loaded.
	LoadedAt time.Time `json:"loadedAt,omitzero"`
	// ReloadErrors counts rejected reloads since start; LastError is the
	// latest one's message, until a good reload clears it.
	ReloadErrors uint64    `json:"reloadErrors"`
	LastError    string    `json:"lastError,omitempty"`
	LastErrorAt  time.Time `json:"lastErrorAt,omitzero"`
}

func (a *API) status(c *fiber.Ctx, _ *reqCtx, _ string) error {
	snap, _ := a.syncer.Current()
	st := Status{Store: a.storeName, Connected: a.syncer.Connected(), StateVersion: snap.Version}
	if a.leader != nil {
		l := a.leader.IsLeader()
		st.Leader = &l
	}
	if a.flags != nil {
		f := a.flags()
		st.Flags = &f
	}
	return c.JSON(st)
}

func (a *API) listAudit(c *fiber.Ctx, rc *reqCtx, _ string) error {
	limit, ok, err := a.limit(c, rc)
	if !ok {
		return err
	}
	ctx, cancel := dbContext()
	defer cancel()
	entries, qerr := a.store.Audit(ctx, controlplane.AuditQuery{Route: strings.Clone(c.Query("route")), Limit: limit})
	if qerr != nil {
		return a.auditUnavailable(c, rc, qerr)
	}
	return c.JSON(entries)
}

func (a *API) auditUnavailable(c *fiber.Ctx, rc *reqCtx, err error) error {
	a.log.Error("reading audit log", "request_id", rc.id, "store", a.storeName, "err", err)
	return a.fail(c, rc, http.StatusServiceUnavailable, CodeControlPlaneUnavailable,
		fmt.Sprintf("the audit log could not be read from the control plane (%s): %v", a.storeName, err))
}

// Annotation is one audit entry in the shape Grafana's JSON datasource
// reads as an annotation.
type Annotation struct {
	// Time is when the change happened, in Unix milliseconds.
	Time  int64    `json:"time"`
	Title string   `json:"title"`
	Text  string   `json:"text"`
	Tags  []string `json:"tags"`
}

func (a *API) annotations(c *fiber.Ctx, rc *reqCtx, _ string) error {
	limit, ok, err := a.limit(c, rc)
	if !ok {
		return err
	}
	q := controlplane.AuditQuery{Route: strings.Clone(c.Query("route")), Limit: limit}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := c.Query(p.name); s != "" {
			v, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil || v < 0 {
				return a.fail(c, rc, http.StatusBadRequest, CodeValidation, fmt.Sprintf("%s must be Unix milliseconds (got %q)", p.name, s))
			}
			if v > 0 {
				*p.dst = time.UnixMilli(v)
			}
		}
	}
	ctx, cancel := dbContext()
	defer cancel()
	entries, qerr := a.store.Audit(ctx, q)
	if qerr != nil {
		return a.auditUnavailable(c, rc, qerr)
	}
	out := make([]Annotation, 0, len(entries))
	for _, e := range entries {
		subject := e.Route
		if subject == "" {
			subject = e.Actor
		}
		out = append(out, Annotation{
			Time:  e.At.UnixMilli(),
			Title: fmt.Sprintf("%s %s: %s → %s", e.Field, subject, e.Old, e.New),
			Text:  fmt.Sprintf("%s (by %s)", e.Reason, e.Actor),
			Tags:  []string{"ficus", e.Field, subject},
		})
	}
	return c.JSON(out)
}

const (
	defaultLimit = 100
	maxLimit     = 1000
)

func (a *API) limit(c *fiber.Ctx, rc *reqCtx) (int, bool, error) {
	s := c.Query("limit")
	if s == "" {
		return defaultLimit, true, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, false, a.fail(c, rc, http.StatusBadRequest, CodeValidation, fmt.Sprintf("limit must be 1-%d (got %q)", maxLimit, s))
	}
	return n, true, nil
}

// dbContext bounds one control plane call (a little above the pool's 5 s
// connect timeout, so an unreachable database answers 503, not a hang). It is deliberately not derived
// from the request: database/sql watches its context from a goroutine that
// can outlive the handler, and fasthttp recycles the request context as
// soon as the handler returns.
func dbContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 7*time.Second)
}
