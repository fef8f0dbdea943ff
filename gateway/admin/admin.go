// Package admin is the operator API of the gateway: live route state,
// canary and pin changes (each audited with who, when and why), the audit
// log and its Grafana annotations, plus the Go client and table renderers
// behind `ficus ctl`.
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
	"database/sql"
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

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/apierr"
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
	// AuditDB stores the audit log; New migrates it. Required.
	AuditDB *sqlitedb.DB
	// Logger receives one line per change and per refused call. Default: discard.
	Logger *slog.Logger
	// Now stamps audit entries. Default time.Now.
	Now func() time.Time
	// Reports are further read-only endpoints by first path segment:
	// "retire" serves GET /admin/retire and GET /admin/retire/*. They sit
	// behind the same authentication and need the read scope. The handler
	// sees the full path and writes its own response.
	Reports map[string]fiber.Handler
}

// API serves the admin endpoints. Changes are serialised: each one reads
// the state it changes, applies it and writes its audit entry before the
// next starts, so every entry's "from" is exact.
type API struct {
	engine   Engine
	breakers func() map[string]string
	stats    func(string) map[string]BackendStats
	tokens   []token
	db       *sqlitedb.DB
	log      *slog.Logger
	now      func() time.Time
	reports  map[string]fiber.Handler
	changeMu sync.Mutex
}

type token struct {
	name  string
	sum   [sha256.Size]byte
	read  bool
	write bool
}

// New checks opts, migrates the audit database and returns the API.
func New(opts Options) (*API, error) {
	if opts.Engine == nil {
		return nil, errors.New("admin: Options.Engine is required")
	}
	if opts.AuditDB == nil {
		return nil, errors.New("admin: Options.AuditDB is required (changes must be audited)")
	}
	a := &API{
		engine: opts.Engine, breakers: opts.Breakers, stats: opts.Stats,
		db: opts.AuditDB, log: opts.Logger, now: opts.Now, reports: opts.Reports,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.db.Migrate(ctx, migrations()); err != nil {
		return nil, fmt.Errorf("admin: audit log: %w", err)
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
	CodeAuditUnavailable = "AUDIT_UNAVAILABLE"  // 503: audit write failed, change not applied
	CodeInternal         = "INTERNAL"           // 500
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

type endpoint struct {
	scope scope
	serve func(a *API, c *fiber.Ctx, rc *reqCtx, route string) error
}

type reqCtx struct {
	id    string
	actor string
}

// Handler returns the fiber handler serving every path under Prefix. It
// answers every request itself (errors included, as
// {"code","message","requestId"}); it never calls c.Next.
func (a *API) Handler() fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		rc := &reqCtx{id: requestID(c)}
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
		rc.actor = tk.name
		ep, route, status := a.match(c.Method(), strings.TrimPrefix(c.Path(), Prefix))
		switch status {
		case http.StatusNotFound:
			return a.fail(c, rc, status, CodeNotFound, "no such admin endpoint; see GET /admin/routes")
		case http.StatusMethodNotAllowed:
			return a.fail(c, rc, status, CodeMethodNotAllowed, "method not allowed on this endpoint")
		}
		if (ep.scope == scopeWrite && !tk.write) || (ep.scope == scopeRead && !tk.read) {
			need := "read"
			if ep.scope == scopeWrite {
				need = "write"
			}
			a.log.Info("admin call refused: missing scope", "request_id", rc.id, "actor", tk.name, "scope", need, "path", c.Path())
			return a.fail(c, rc, http.StatusForbidden, CodeForbidden, fmt.Sprintf("token %q lacks the %s scope", tk.name, need))
		}
		return ep.serve(a, c, rc, route)
	}
}

// match routes method+path (without Prefix) to an endpoint and the route
// name in the path, or reports 404/405. Reports are matched by their first
// path segment.
func (a *API) match(method, path string) (endpoint, string, int) {
	first, _, _ := strings.Cut(strings.Trim(path, "/"), "/")
	if h, ok := a.reports[first]; ok {
		if method != fiber.MethodGet && method != fiber.MethodHead {
			return endpoint{}, "", http.StatusMethodNotAllowed
		}
		return endpoint{scopeRead, func(_ *API, c *fiber.Ctx, _ *reqCtx, _ string) error { return h(c) }}, "", http.StatusOK
	}
	return match(method, path)
}

// match routes the API's own endpoints.
func match(method, path string) (endpoint, string, int) {
	// Cloned: fiber's path aliases a buffer that is reused after the
	// handler returns, and the route name ends up in logs and audit rows.
	seg := strings.Split(strings.Clone(strings.Trim(path, "/")), "/")
	var want map[string]endpoint
	route := ""
	switch {
	case len(seg) == 1 && seg[0] == "routes":
		want = map[string]endpoint{fiber.MethodGet: {scopeRead, (*API).listRoutes}}
	case len(seg) == 2 && seg[0] == "routes" && seg[1] != "":
		route = seg[1]
		want = map[string]endpoint{fiber.MethodGet: {scopeRead, (*API).getRoute}}
	case len(seg) == 3 && seg[0] == "routes" && seg[1] != "":
		route = seg[1]
		switch seg[2] {
		case "canary":
			want = map[string]endpoint{fiber.MethodPut: {scopeWrite, (*API).setCanary}}
		case "pin":
			want = map[string]endpoint{fiber.MethodPost: {scopeWrite, (*API).pin}}
		case "resume":
			want = map[string]endpoint{fiber.MethodPost: {scopeWrite, (*API).resume}}
		}
	case len(seg) == 1 && seg[0] == "audit":
		want = map[string]endpoint{fiber.MethodGet: {scopeRead, (*API).listAudit}}
	case len(seg) == 1 && seg[0] == "annotations":
		want = map[string]endpoint{fiber.MethodGet: {scopeRead, (*API).annotations}}
	}
	if want == nil {
		return endpoint{}, "", http.StatusNotFound
	}
	if method == fiber.MethodHead {
		method = fiber.MethodGet
	}
	ep, ok := want[method]
	if !ok {
		return endpoint{}, "", http.StatusMethodNotAllowed
	}
	return ep, route, http.StatusOK
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

// RouteView is one route as the API shows it.
type RouteView struct {
	Name          string        `json:"name"`
	CanaryPercent float64       `json:"canaryPercent"`
	Cohort        string        `json:"cohort"`
	Flag          string        `json:"flag,omitempty"`
	Pinned        string        `json:"pinned,omitempty"`
	Backends      []BackendView `json:"backends"`
}

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
	v := RouteView{Name: st.Name, CanaryPercent: st.Canary, Cohort: st.Cohort, Flag: st.Flag, Pinned: st.Pinned}
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
	return c.JSON(a.view(st, a.breakerStates()))
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
	return a.apply(c, rc, change{
		action: ActionCanary, route: route, reason: reason,
		do:       func() (decide.RouteState, error) { return a.engine.SetCanary(route, p) },
		undo:     func(from decide.RouteState) error { _, err := a.engine.SetCanary(route, from.Canary); return err },
		describe: describeCanary,
	})
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
	return a.apply(c, rc, change{
		action: ActionPin, route: route, reason: reason,
		do:       func() (decide.RouteState, error) { return a.engine.Pin(route, backend) },
		undo:     a.restorePin(route),
		describe: describePin,
	})
}

func (a *API) resume(c *fiber.Ctx, rc *reqCtx, route string) error {
	var b struct {
		Reason string `json:"reason"`
	}
	if ok, err := a.decodeChange(c, rc, &b); !ok {
		return err
	}
	reason, ok, err := a.checkReason(c, rc, b.Reason)
	if !ok {
		return err
	}
	return a.apply(c, rc, change{
		action: ActionResume, route: route, reason: reason,
		do:       func() (decide.RouteState, error) { return a.engine.Resume(route) },
		undo:     a.restorePin(route),
		describe: describePin,
	})
}

func (a *API) restorePin(route string) func(decide.RouteState) error {
	return func(from decide.RouteState) error {
		if b, pinned := from.PinnedBackend(); pinned {
			_, err := a.engine.Pin(route, b)
			return err
		}
		_, err := a.engine.Resume(route)
		return err
	}
}

// Actions recorded in the audit log.
const (
	ActionCanary = "canary"
	ActionPin    = "pin"
	ActionResume = "resume"
)

func describeCanary(s decide.RouteState) string {
	return strconv.FormatFloat(s.Canary, 'f', -1, 64) + "%"
}

func describePin(s decide.RouteState) string {
	if s.Pinned == "" {
		return "unpinned"
	}
	return "pinned:" + s.Pinned
}

type change struct {
	action, route, reason string
	do                    func() (from decide.RouteState, err error)
	undo                  func(from decide.RouteState) error
	describe              func(decide.RouteState) string
}

// ChangeResult answers a successful change: its audit entry and the route
// as it is now.
type ChangeResult struct {
	Audit AuditEntry `json:"audit"`
	Route RouteView  `json:"route"`
}

// apply performs ch and records it, atomically as far as anyone can
// observe afterwards: the change is applied inside the audit transaction,
// and if the audit row cannot be written or committed the change is undone
// before the call returns (503 AUDIT_UNAVAILABLE). Requests decided during
// those few milliseconds may have seen the new state; no change survives
// without its audit entry.
func (a *API) apply(c *fiber.Ctx, rc *reqCtx, ch change) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	ctx, cancel := dbContext()
	defer cancel()
	var (
		applied  bool
		from, to decide.RouteState
		entry    AuditEntry
		applyErr error
	)
	err := a.db.Tx(ctx, func(tx *sql.Tx) error {
		f, err := ch.do()
		if err != nil {
			applyErr = err
			return err
		}
		applied, from = true, f
		to, _ = a.lookup(ch.route)
		entry = AuditEntry{
			At: a.now().UTC().Truncate(time.Millisecond), Actor: rc.actor, Action: ch.action, Route: ch.route,
			From: ch.describe(from), To: ch.describe(to), Reason: ch.reason, RequestID: rc.id,
		}
		entry.ID, err = insertAudit(ctx, tx, entry)
		return err
	})
	if applyErr != nil {
		switch {
		case errors.Is(applyErr, decide.ErrUnknownRoute):
			return a.unknownRoute(c, rc, ch.route)
		case errors.Is(applyErr, decide.ErrInvalidPercent):
			return a.fail(c, rc, http.StatusBadRequest, CodeInvalidPercent, applyErr.Error())
		case errors.Is(applyErr, decide.ErrNoNewBackend):
			return a.fail(c, rc, http.StatusConflict, CodeNoNewBackend, fmt.Sprintf("route %q has no new backend (routes[].new in the config); only legacy is possible", ch.route))
		}
		a.log.Error("admin change failed", "request_id", rc.id, "route", ch.route, "action", ch.action, "err", applyErr)
		return a.fail(c, rc, http.StatusInternalServerError, CodeInternal, "change failed; quote the requestId when reporting it")
	}
	if err != nil {
		if applied {
			if uerr := ch.undo(from); uerr != nil {
				a.log.Error("admin change could not be undone after the audit write failed", "request_id", rc.id, "route", ch.route, "action", ch.action, "err", uerr)
			}
		}
		a.log.Error("audit write failed; change not applied", "request_id", rc.id, "actor", rc.actor, "route", ch.route, "action", ch.action, "err", err)
		return a.fail(c, rc, http.StatusServiceUnavailable, CodeAuditUnavailable, "the audit log could not be written, so the change was not applied; check the audit database (admin.auditDB) and retry")
	}
	a.log.Info("route changed", "request_id", rc.id, "actor", rc.actor, "route", ch.route, "action", ch.action,
		"from", entry.From, "to", entry.To, "reason", ch.reason)
	return c.JSON(ChangeResult{Audit: entry, Route: a.view(to, a.breakerStates())})
}

func (a *API) listAudit(c *fiber.Ctx, rc *reqCtx, _ string) error {
	limit, ok, err := a.limit(c, rc)
	if !ok {
		return err
	}
	ctx, cancel := dbContext()
	defer cancel()
	entries, qerr := a.queryAudit(ctx, auditQuery{route: strings.Clone(c.Query("route")), limit: limit})
	if qerr != nil {
		a.log.Error("reading audit log", "request_id", rc.id, "err", qerr)
		return a.fail(c, rc, http.StatusServiceUnavailable, CodeAuditUnavailable, "the audit log could not be read; check the audit database (admin.auditDB)")
	}
	return c.JSON(entries)
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
	q := auditQuery{route: strings.Clone(c.Query("route")), limit: limit}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from", &q.fromMS}, {"to", &q.toMS}} {
		if s := c.Query(p.name); s != "" {
			v, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil || v < 0 {
				return a.fail(c, rc, http.StatusBadRequest, CodeValidation, fmt.Sprintf("%s must be Unix milliseconds (got %q)", p.name, s))
			}
			*p.dst = v
		}
	}
	ctx, cancel := dbContext()
	defer cancel()
	entries, qerr := a.queryAudit(ctx, q)
	if qerr != nil {
		a.log.Error("reading audit log", "request_id", rc.id, "err", qerr)
		return a.fail(c, rc, http.StatusServiceUnavailable, CodeAuditUnavailable, "the audit log could not be read; check the audit database (admin.auditDB)")
	}
	out := make([]Annotation, 0, len(entries))
	for _, e := range entries {
		out = append(out, Annotation{
			Time:  e.At.UnixMilli(),
			Title: fmt.Sprintf("%s %s: %s → %s", e.Action, e.Route, e.From, e.To),
			Text:  fmt.Sprintf("%s (by %s)", e.Reason, e.Actor),
			Tags:  []string{"ficus", e.Action, e.Route},
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

// dbContext bounds one audit database call. It is deliberately not derived
// from the request: database/sql watches its context from a goroutine that
// can outlive the handler, and fasthttp recycles the request context as
// soon as the handler returns.
func dbContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}
