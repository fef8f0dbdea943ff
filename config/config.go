// Package config is the gateway's configuration: one YAML file describing
// listeners, upstreams, routes and limits. Defaults are applied in one place
// (ApplyDefaults) and Validate reports every problem at once, each naming the
// key path and the bad value, so an operator fixes a file in one pass.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration.
type Config struct {
	// Listen is the public address of the gateway. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLS serves the public listener over HTTPS (config/tls.go). Default
	// plain HTTP.
	TLS TLS `yaml:"tls"`
	// Admin is the operator listener (metrics, health, admin API).
	Admin Admin `yaml:"admin"`
	// TrustedProxies lists peers (CIDRs or single IPs) whose X-Forwarded-*
	// headers are believed. Empty (the default) trusts nobody: forwarded
	// headers from clients are replaced.
	TrustedProxies []string `yaml:"trustedProxies"`
	// Limits bound what one request may cost.
	Limits Limits `yaml:"limits"`
	// Upstreams are the backends by name; routes refer to them by name.
	Upstreams map[string]Upstream `yaml:"upstreams"`
	// Routing says how a request's user is identified and who may override
	// a decision.
	Routing Routing `yaml:"routing"`
	// Flags configures the OpenFeature provider. Empty means no flags: a
	// route that names a flag then fails validation.
	Flags Flags `yaml:"flags"`
	// Routes are matched in order of specificity: exact paths first, then
	// the longest prefix. A request no route matches goes to DefaultRoute.
	Routes []Route `yaml:"routes"`
	// DefaultRoute serves requests that match no route. Default: name
	// "default", backend "legacy", every method.
	DefaultRoute Route `yaml:"defaultRoute"`
	// Shadow is the store of differing shadow samples.
	Shadow ShadowStore `yaml:"shadow"`
	// Retire tracks who still calls each route's legacy side, so legacy
	// code is deleted only on evidence.
	Retire Retire `yaml:"retire"`
	// Intents is the ledger of routes with write affinity (config/affinity.go).
	Intents Intents `yaml:"intents"`

	// ControlPlane keeps the live route state and the audit log (see
	// controlplane.go).
	ControlPlane ControlPlane `yaml:"controlPlane"`

	// Autopilot runs the rollout plans (config/rollout.go).
	Autopilot Autopilot `yaml:"autopilot"`
}

// Retire configures the retirement tracker: per route, when the legacy side
// last served it and which callers it served.
type Retire struct {
	// DB is the SQLite file where hits survive restarts. Default
	// "data/ficus-retire.db".
	DB string `yaml:"db"`
	// Window: a route whose legacy side served nothing for this long is
	// reported ready to delete. Default 168h (7 days).
	Window time.Duration `yaml:"window"`
	// Caller identifies a caller: "header" (the CallerHeader's value, e.g.
	// an API key, recorded as a short SHA-256 fingerprint, never in clear),
	// "user-agent" or "ip". Default "user-agent".
	Caller string `yaml:"caller"`
	// CallerHeader is read when Caller is "header". Default "X-Api-Key".
	CallerHeader string `yaml:"callerHeader"`
	// MaxCallers kept per route; further callers are counted together as
	// "(other)". Default 20.
	MaxCallers int `yaml:"maxCallers"`
	// FlushInterval is how often hits are written to DB. Default 10s.
	FlushInterval time.Duration `yaml:"flushInterval"`
}

// Admin is the operator listener.
type Admin struct {
	// Listen is the admin address (/metrics, /healthz, /readyz, /admin/...).
	// Default 127.0.0.1:8090.
	Listen string `yaml:"listen"`
	// TLS serves the admin listener over HTTPS (config/tls.go). Default
	// plain HTTP.
	TLS TLS `yaml:"tls"`
	// Tokens may call the admin API. None means the admin API answers 401
	// to everything (metrics and health stay open).
	Tokens []Token `yaml:"tokens"`
	// AuditDB is the SQLite file of the audit log. Default "data/ficus-audit.db".
	// Kept for compatibility: it is now the default of
	// controlPlane.sqlite.path, which holds the audit log with the state.
	AuditDB string `yaml:"auditDB"`
}

// Token is one bearer token of the admin API.
type Token struct {
	// Name identifies who acts in the audit log, e.g. "alice" or "ci".
	Name string `yaml:"name"`
	// Value is the token itself. Prefer ValueEnv: a token in a file leaks
	// with the file.
	Value string `yaml:"value"`
	// ValueEnv names an environment variable holding the token; it wins
	// over Value when set and non-empty.
	ValueEnv string `yaml:"valueEnv"`
	// Scopes: "read" (list routes, audit) and/or "write" (change routes).
	Scopes []string `yaml:"scopes"`
}

// Secret returns the token value, preferring the environment.
func (t Token) Secret() string {
	if t.ValueEnv != "" {
		if v := os.Getenv(t.ValueEnv); v != "" {
			return v
		}
	}
	return t.Value
}

// Limits bound what a request may cost the gateway.
type Limits struct {
	// MaxRequestBodyBytes rejects larger bodies with 413. Default 4 MiB.
	MaxRequestBodyBytes int `yaml:"maxRequestBodyBytes"`
	// MaxHeaderBytes is the read buffer for request headers (fasthttp
	// ReadBufferSize); larger headers get 431. Default 8 KiB.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
	// ReadTimeout bounds reading one whole request. Default 30s.
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// WriteTimeout bounds writing one response. Default 60s.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// IdleTimeout closes idle keep-alive connections. Default 90s.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// ShutdownTimeout is how long SIGTERM waits for in-flight requests
	// before closing connections. Default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// ShutdownDelay is the readiness window on SIGTERM: /readyz answers 503
	// at once while the public listener keeps serving (answers carry
	// Connection: close) for this long, so a load balancer stops sending
	// before the listener closes. Set it to the balancer's health-check
	// interval times its failure threshold. Default 0: no window.
	ShutdownDelay time.Duration `yaml:"shutdownDelay"`
	// StreamResponseThresholdBytes: upstream responses larger than this
	// (or of unknown length) are streamed to the client instead of being
	// buffered whole. Default 1 MiB.
	StreamResponseThresholdBytes int `yaml:"streamResponseThresholdBytes"`
}

// Upstream is one backend the gateway proxies to.
type Upstream struct {
	// URL is the base, scheme://host:port (no path), e.g. http://127.0.0.1:8081.
	URL string `yaml:"url"`
	// Kind says what the upstream speaks: "legacy" (the monolith's own
	// formats), "new" (the new contract) or "acl" (the new contract served
	// from the legacy). Used by shadow comparison. Default "legacy".
	Kind string `yaml:"kind"`
	// DialTimeout bounds connecting. Default 2s.
	DialTimeout time.Duration `yaml:"dialTimeout"`
	// Timeout is the default time to wait for the response headers; a
	// route may override it. Default 10s. On expiry the client gets 504.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConns caps connections to this upstream. Default 512.
	MaxConns int `yaml:"maxConns"`
	// MaxIdleConnDuration closes pooled idle connections. Default 30s.
	MaxIdleConnDuration time.Duration `yaml:"maxIdleConnDuration"`
	// Breaker trips this upstream's circuit breaker.
	Breaker Breaker `yaml:"breaker"`
}

// Breaker configures one upstream's circuit breaker (gobreaker).
type Breaker struct {
	// Disabled turns the breaker off for this upstream. Default false.
	Disabled bool `yaml:"disabled"`
	// Window is the rolling window over which failures are counted. It
	// must be at least the upstream's timeout and every route timeout on
	// this upstream. Default: 10s, or the upstream's timeout if longer.
	Window time.Duration `yaml:"window"`
	// MinRequests in the window before the breaker may trip. Default 10.
	MinRequests uint32 `yaml:"minRequests"`
	// FailureRatio (0..1] trips the breaker. Default 0.5.
	FailureRatio float64 `yaml:"failureRatio"`
	// ConsecutiveFailures trips the breaker regardless of ratio. Default 5.
	ConsecutiveFailures uint32 `yaml:"consecutiveFailures"`
	// OpenFor is how long the breaker stays open before letting probes
	// through. Default 5s.
	OpenFor time.Duration `yaml:"openFor"`
	// HalfOpenProbes is how many requests may probe while half-open.
	// Default 3.
	HalfOpenProbes uint32 `yaml:"halfOpenProbes"`
}

// Routing identifies the user a request belongs to and who may override a
// routing decision.
type Routing struct {
	// UserKey says where the sticky user key comes from, first hit wins.
	UserKey UserKey `yaml:"userKey"`
	// Override lets testers force a backend with a header.
	Override Override `yaml:"override"`
	// ContextHeaders are request headers copied into the flag evaluation
	// context (as lower-case attribute names). Default none.
	ContextHeaders []string `yaml:"contextHeaders"`
}

// UserKey locates the sticky key of a request's user.
type UserKey struct {
	// Header, e.g. "X-User-Id". Default "X-User-Id".
	Header string `yaml:"header"`
	// Cookie, e.g. "uid". Empty: not used.
	Cookie string `yaml:"cookie"`
	// JWTSub takes the unverified "sub" claim of an "Authorization: Bearer"
	// JWT. Only for bucketing, never for authorisation. Default false.
	JWTSub bool `yaml:"jwtSub"`
}

// Override is the tester's escape hatch: a header naming the backend,
// honoured only with a valid token or from a trusted network.
type Override struct {
	// Header carries "legacy" or "new". Default "X-Ficus-Backend".
	Header string `yaml:"header"`
	// TokenHeader carries the override token. Default "X-Ficus-Override-Token".
	TokenHeader string `yaml:"tokenHeader"`
	// Tokens accepted in TokenHeader (values or env names, as admin tokens).
	Tokens []Token `yaml:"tokens"`
	// TrustedNetworks (CIDRs) may override without a token. Default none.
	TrustedNetworks []string `yaml:"trustedNetworks"`
}

// Flags configures the OpenFeature provider that answers route flags.
type Flags struct {
	// File is a flagd flag-definition JSON file evaluated in process and
	// re-read when it changes. Relative paths are relative to the config file.
	File string `yaml:"file"`
	// Flagd is host:port of a flagd server (the scale-out alternative to
	// File). Exactly one of File and Flagd may be set.
	Flagd string `yaml:"flagd"`
}

// Route is one named slice of the URL space with its own traffic policy.
type Route struct {
	// Name labels metrics, logs and admin calls. Required, unique,
	// [a-z0-9_-]{1,64}.
	Name string `yaml:"name"`
	// Path is an exact path ("/shop/catalog.do") or a prefix ending in
	// "/*" ("/api/v1/products/*" matches "/api/v1/products" and below).
	Path string `yaml:"path"`
	// Methods the route accepts; others get 405. Empty means every method
	// except TRACE and CONNECT, which a route must list to accept.
	Methods []string `yaml:"methods"`
	// Legacy is the upstream serving the legacy side. Default "legacy".
	Legacy string `yaml:"legacy"`
	// New is the upstream serving the new side. Empty: the route is
	// legacy-only (facade phase).
	New string `yaml:"new"`
	// LegacyRemoved retires the route's legacy side (phase 5): every
	// request is served by New, with no flag, canary, pin, fallback or
	// shadow, and the retirement tracker no longer counts it. Default
	// false. See config/retired.go.
	LegacyRemoved bool `yaml:"legacyRemoved"`
	// Canary is the percent (0-100, fractions allowed, e.g. 0.5) of users
	// sent to New. Default 0.
	Canary float64 `yaml:"canary"`
	// Cohort is the sticky-hash key: routes sharing a cohort put a user on
	// the same side (e.g. cart and order). Default: the route name.
	Cohort string `yaml:"cohort"`
	// Flag names an OpenFeature flag whose string variant ("legacy" or
	// "new") decides before the canary. Empty: no flag.
	Flag string `yaml:"flag"`
	// Timeout overrides the upstream's response timeout for this route.
	// Zero: the upstream's.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a safe request (GET/HEAD/OPTIONS) is retried
	// on a connection error that happened before any byte was sent. Default
	// 0; at most 3.
	Retries int `yaml:"retries"`
	// Fallback serves a failed safe request from Legacy when New fails.
	// Default true (set false to see new-side failures unmasked).
	Fallback *bool `yaml:"fallback"`
	// RateLimit caps requests per second for the whole route (all clients).
	RateLimit RateLimit `yaml:"rateLimit"`
	// BufferResponses reads every upstream answer whole before relaying it,
	// never as a stream: the cheapest path for API routes whose answers are
	// small. An answer larger than limits.streamResponseThresholdBytes is
	// then refused with 502 (upstream_error) instead of being streamed.
	// Default false: bodies up to the threshold are read whole, larger or
	// unknown-length ones stream, at a small cost on every request.
	BufferResponses bool `yaml:"bufferResponses"`
	// Shadow mirrors a sample of the route's requests to the other side and
	// compares the answers. Nil (the default) mirrors nothing.
	Shadow *Shadow `yaml:"shadow"`
	// Affinity binds each write intent (Idempotency-Key) to the side its
	// first attempt went to. Nil (the default): no binding.
	Affinity *WriteAffinity `yaml:"affinity"`
	// Rollout is the autopilot's plan for this route (and its cohort). Nil
	// (the default): the route moves only when an operator moves it.
	Rollout *Rollout `yaml:"rollout"`
	// Deny fences the route: every request to it is answered by the
	// gateway with this structured error and never reaches an upstream
	// (legacy admin pages, internal endpoints). Nil (the default): served.
	Deny *Deny `yaml:"deny"`
}

// Deny is the answer of a fenced route.
type Deny struct {
	// Status is the HTTP status, 400-599. Default 404 (an operator fence
	// usually should not confirm that something is there).
	Status int `yaml:"status"`
	// Code is the machine-readable code, [A-Z0-9_]{1,64}. Default
	// NOT_FOUND for 404, FORBIDDEN otherwise.
	Code string `yaml:"code"`
	// Message is the human text. Default "no such endpoint" for 404,
	// "this endpoint was retired" for 410, "this endpoint is not
	// available through the gateway" otherwise.
	Message string `yaml:"message"`
	// Successor names what replaces a retired route (an absolute path or
	// an http(s) URL): sent as Link: <successor>; rel="successor-version"
	// (RFC 5829). Usually with status 410, code GONE. Empty (the
	// default): no Link.
	Successor string `yaml:"successor"`
}

// Shadow configures one route's shadow traffic: a copy of sampled requests
// goes to Target, fire and forget, and both answers are compared in the new
// contract's terms. The primary response never waits for the shadow.
type Shadow struct {
	// Percent of eligible requests mirrored (0-100), sampled
	// deterministically by request id. Default 0: off.
	Percent float64 `yaml:"percent"`
	// Target is the upstream receiving the copy. Default: the route's side
	// that did not serve the request (new when legacy served, and back).
	Target string `yaml:"target"`
	// Methods mirrored. Default GET and HEAD. A write method here also needs
	// Writes: true.
	Methods []string `yaml:"methods"`
	// Writes allows mirroring write methods: they are sent with the
	// X-Ficus-Shadow: 1 dry-run marker and an Idempotency-Key, to a target
	// that validates and answers without changing anything. Default false.
	Writes bool `yaml:"writes"`
	// MaxBodyBytes: requests with a larger body are not mirrored (counted as
	// skipped). Default 64 KiB.
	MaxBodyBytes int `yaml:"maxBodyBytes"`
	// Timeout bounds one shadow exchange. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency caps this route's shadow workers (started as copies
	// wait). Copies wait in a queue bounded at 64 per worker (256-8192
	// copies, 16 MiB of bodies); a copy finding it full is dropped
	// (counted), never queued without bound. Default 16.
	Concurrency int `yaml:"concurrency"`
	// Noise sends the request to the primary side a second time so each
	// field's noise rate (primary vs primary) can be told from a real
	// difference (primary vs target). Default false.
	Noise bool `yaml:"noise"`
	// Compare says what counts as a difference.
	Compare Compare `yaml:"compare"`
	// Samples is how many of the latest differing exchanges are kept per
	// route. Default 20.
	Samples int `yaml:"samples"`
}

// Compare configures the comparison of a primary and a shadow answer.
type Compare struct {
	// Headers compared besides status and body (case-insensitive).
	// Default Content-Type.
	Headers []string `yaml:"headers"`
	// ArrayKeys matches array elements by a key field instead of position:
	// a path pattern ("/items") to the field name ("sku"). Default none.
	ArrayKeys map[string]string `yaml:"arrayKeys"`
	// Ignore lists fields not compared, each owned and expiring.
	Ignore []IgnoreRule `yaml:"ignore"`
	// RelativeThreshold: a field is a real difference only when its
	// difference rate exceeds its noise rate by this fraction. Default 0.2.
	RelativeThreshold float64 `yaml:"relativeThreshold"`
	// AbsoluteThreshold: ... and by at least this absolute rate (0.0003 is
	// 0.03%). Default 0.0003.
	AbsoluteThreshold float64 `yaml:"absoluteThreshold"`
}

// IgnoreRule removes a field from comparison until it expires.
type IgnoreRule struct {
	// Path is a JSON pointer, "*" matching one segment:
	// "/items/*/updatedAt".
	Path string `yaml:"path"`
	// Owner is who answers for the rule (a team or a person). Required.
	Owner string `yaml:"owner"`
	// Reason says why the difference is acceptable. Required.
	Reason string `yaml:"reason"`
	// Expires is the date (YYYY-MM-DD, end of day UTC) after which the rule
	// stops applying and is reported as expired. Required.
	Expires string `yaml:"expires"`
}

// ShadowStore is where differing shadow samples are kept.
type ShadowStore struct {
	// DB is the SQLite file. Default "data/ficus-shadow.db".
	DB string `yaml:"db"`
}

// FallbackEnabled reports the effective Fallback setting.
func (r Route) FallbackEnabled() bool { return r.Fallback == nil || *r.Fallback }

// RateLimit is a token bucket per route.
type RateLimit struct {
	// RPS is the sustained rate. Zero (the default) means unlimited.
	RPS float64 `yaml:"rps"`
	// Burst is the bucket size. Default: max(1, RPS).
	Burst int `yaml:"burst"`
}

//go:embed demo.yaml
var demoYAML []byte

//go:embed demo-flags.json
var demoFlags []byte

// DemoFlags returns the demo's flagd flag definitions (JSON).
func DemoFlags() []byte { return bytes.Clone(demoFlags) }

// Demo returns the embedded demo configuration with defaults applied.
func Demo() (*Config, error) { return Parse(demoYAML) }

// DemoYAML returns the embedded demo configuration's text.
func DemoYAML() []byte { return bytes.Clone(demoYAML) }

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(b)
}

// Parse decodes YAML (unknown keys are errors), applies defaults and
// validates. A validation failure is a *ValidationError listing every problem.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing config YAML: %w", err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
