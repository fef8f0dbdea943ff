package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ApplyDefaults fills every unset field with its documented default. It is
// the only place defaults live.
func (c *Config) ApplyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Listen, "127.0.0.1:8080")
	def(&c.Admin.Listen, "127.0.0.1:8090")
	def(&c.Admin.AuditDB, "data/ficus-audit.db")
	defInt(&c.Limits.MaxRequestBodyBytes, 4<<20)
	defInt(&c.Limits.MaxHeaderBytes, 8<<10)
	defDur(&c.Limits.ReadTimeout, 30*time.Second)
	defDur(&c.Limits.WriteTimeout, 60*time.Second)
	defDur(&c.Limits.IdleTimeout, 90*time.Second)
	defDur(&c.Limits.ShutdownTimeout, 20*time.Second)
	defInt(&c.Limits.StreamResponseThresholdBytes, 1<<20)
	for name, u := range c.Upstreams {
		def(&u.Kind, "legacy")
		defDur(&u.DialTimeout, 2*time.Second)
		defDur(&u.Timeout, 10*time.Second)
		defInt(&u.MaxConns, 512)
		defDur(&u.MaxIdleConnDuration, 30*time.Second)
		b := &u.Breaker
		// A window shorter than the timeout cannot see its timeouts.
		defDur(&b.Window, max(10*time.Second, u.Timeout))
		if b.MinRequests == 0 {
			b.MinRequests = 10
		}
		if b.FailureRatio == 0 {
			b.FailureRatio = 0.5
		}
		if b.ConsecutiveFailures == 0 {
			b.ConsecutiveFailures = 5
		}
		defDur(&b.OpenFor, 5*time.Second)
		if b.HalfOpenProbes == 0 {
			b.HalfOpenProbes = 3
		}
		c.Upstreams[name] = u
	}
	def(&c.Routing.UserKey.Header, "X-User-Id")
	def(&c.Routing.Override.Header, "X-Ficus-Backend")
	def(&c.Routing.Override.TokenHeader, "X-Ficus-Override-Token")
	def(&c.Shadow.DB, "data/ficus-shadow.db")
	def(&c.Retire.DB, "data/ficus-retire.db")
	defDur(&c.Retire.Window, 7*24*time.Hour)
	def(&c.Retire.Caller, "user-agent")
	def(&c.Retire.CallerHeader, "X-Api-Key")
	defInt(&c.Retire.MaxCallers, 20)
	defDur(&c.Retire.FlushInterval, 10*time.Second)
	c.applyControlPlaneDefaults()
	c.applyAutopilotDefaults()
	c.applyTLSDefaults()
	def(&c.DefaultRoute.Name, "default")
	def(&c.DefaultRoute.Path, "/*")
	for i := range c.Routes {
		c.Routes[i].applyDefaults()
	}
	c.DefaultRoute.applyDefaults()
	c.applyIntentDefaults()
}

func (r *Route) applyDefaults() {
	if r.Legacy == "" {
		r.Legacy = "legacy"
	}
	if r.Cohort == "" {
		r.Cohort = r.Name
	}
	for i, m := range r.Methods {
		r.Methods[i] = strings.ToUpper(m)
	}
	r.Rollout.applyDefaults()
	if d := r.Deny; d != nil {
		if d.Status == 0 {
			d.Status = 404
		}
		if d.Code == "" {
			switch d.Status {
			case 404:
				d.Code = "NOT_FOUND"
			case 410:
				d.Code = "GONE"
			default:
				d.Code = "FORBIDDEN"
			}
		}
		if d.Message == "" {
			switch d.Status {
			case 404:
				d.Message = "no such endpoint"
			case 410:
				d.Message = "this endpoint was retired"
				if d.Successor != "" {
					d.Message += "; its successor is named in the Link header"
				}
			default:
				d.Message = "this endpoint is not available through the gateway"
			}
		}
	}
	if r.RateLimit.RPS > 0 && r.RateLimit.Burst == 0 {
		r.RateLimit.Burst = max(1, int(r.RateLimit.RPS))
	}
	if s := r.Shadow; s != nil {
		if len(s.Methods) == 0 {
			s.Methods = []string{"GET", "HEAD"}
		}
		for i, m := range s.Methods {
			s.Methods[i] = strings.ToUpper(m)
		}
		if s.MaxBodyBytes == 0 {
			s.MaxBodyBytes = 64 << 10
		}
		if s.Timeout == 0 {
			s.Timeout = 2 * time.Second
		}
		if s.Concurrency == 0 {
			s.Concurrency = 16
		}
		if s.Samples == 0 {
			s.Samples = 20
		}
		if len(s.Compare.Headers) == 0 {
			s.Compare.Headers = []string{"Content-Type"}
		}
		if s.Compare.RelativeThreshold == 0 {
			s.Compare.RelativeThreshold = 0.2
		}
		if s.Compare.AbsoluteThreshold == 0 {
			s.Compare.AbsoluteThreshold = 0.0003
		}
	}
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []Problem
}

// Problem is one invalid value: where it is, what it was, what is wrong.
type Problem struct {
	Path    string // e.g. "routes[2].canary"
	Value   any
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s (got %v)", p.Path, p.Message, p.Value)
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration, %d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

var (
	routeName   = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	errorCode   = regexp.MustCompile(`^[A-Z0-9_]{1,64}$`)
	knownMethod = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "TRACE": true, "CONNECT": true}
	knownKinds  = map[string]bool{"legacy": true, "new": true, "acl": true}
	knownScopes = map[string]bool{"read": true, "write": true}
)

// Validate checks the whole configuration and returns a *ValidationError
// with every problem, or nil.
func (c *Config) Validate() error {
	var ps []Problem
	add := func(path string, v any, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Value: v, Message: fmt.Sprintf(format, args...)})
	}
	checkAddr := func(path, addr string) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			add(path, addr, "must be ip:port, e.g. 127.0.0.1:8080")
			return
		}
		if ap.Port() == 0 && path != "" {
			add(path, addr, "port must not be 0")
		}
	}
	checkAddr("listen", c.Listen)
	checkAddr("admin.listen", c.Admin.Listen)
	c.validateControlPlane(add)
	c.validateAutopilot(add)
	c.validateTLS(add)
	if c.Listen == c.Admin.Listen {
		add("admin.listen", c.Admin.Listen, "must differ from listen")
	}
	for i, t := range c.Admin.Tokens {
		checkToken(fmt.Sprintf("admin.tokens[%d]", i), t, true, add)
	}
	for i, p := range c.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			add(fmt.Sprintf("trustedProxies[%d]", i), p, "must be a CIDR (10.0.0.0/8) or an IP")
		}
	}
	for i, p := range c.Routing.Override.TrustedNetworks {
		if _, err := ParsePrefix(p); err != nil {
			add(fmt.Sprintf("routing.override.trustedNetworks[%d]", i), p, "must be a CIDR (10.0.0.0/8) or an IP")
		}
	}
	for i, t := range c.Routing.Override.Tokens {
		checkToken(fmt.Sprintf("routing.override.tokens[%d]", i), t, false, add)
	}
	l := c.Limits
	if l.MaxRequestBodyBytes < 0 {
		add("limits.maxRequestBodyBytes", l.MaxRequestBodyBytes, "must be positive")
	}
	if l.MaxHeaderBytes < 1024 {
		add("limits.maxHeaderBytes", l.MaxHeaderBytes, "must be at least 1024")
	}
	for _, d := range []struct {
		path string
		d    time.Duration
	}{
		{"limits.readTimeout", l.ReadTimeout}, {"limits.writeTimeout", l.WriteTimeout},
		{"limits.idleTimeout", l.IdleTimeout}, {"limits.shutdownTimeout", l.ShutdownTimeout},
		{"limits.shutdownDelay", l.ShutdownDelay},
	} {
		if d.d < 0 {
			add(d.path, d.d, "must not be negative")
		}
	}
	if len(c.Upstreams) == 0 {
		add("upstreams", nil, "at least one upstream is required (the legacy)")
	}
	for _, name := range sortedKeys(c.Upstreams) {
		u := c.Upstreams[name]
		p := "upstreams." + name
		if !routeName.MatchString(name) {
			add(p, name, "upstream names are [a-z0-9_-]{1,64}")
		}
		pu, err := url.Parse(u.URL)
		switch {
		case u.URL == "":
			add(p+".url", u.URL, "is required, e.g. http://127.0.0.1:8081")
		case err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
			add(p+".url", u.URL, "must be http(s)://host:port")
		case pu.Path != "" && pu.Path != "/" || pu.RawQuery != "":
			add(p+".url", u.URL, "must not have a path or query; routes keep the request path")
		}
		if !knownKinds[u.Kind] {
			add(p+".kind", u.Kind, "must be legacy, new or acl")
		}
		if u.Timeout < 0 || u.DialTimeout < 0 {
			add(p+".timeout", u.Timeout, "must not be negative")
		}
		if u.MaxConns < 0 {
			add(p+".maxConns", u.MaxConns, "must be positive")
		}
		if b := u.Breaker; b.FailureRatio <= 0 || b.FailureRatio > 1 {
			add(p+".breaker.failureRatio", b.FailureRatio, "must be in (0, 1]")
		}
		if b := u.Breaker; !b.Disabled && b.Window < u.Timeout {
			add(p+".breaker.window", b.Window, "must be at least %s.timeout (%s): a window shorter than one request's timeout cannot see the timeouts it should count", p, u.Timeout)
		}
	}
	c.validateBreakerWindows(add)
	switch c.Retire.Caller {
	case "header", "user-agent", "ip":
	default:
		add("retire.caller", c.Retire.Caller, "must be header, user-agent or ip")
	}
	if c.Retire.Window < 0 || c.Retire.FlushInterval < 0 {
		add("retire.window", c.Retire.Window, "must not be negative")
	}
	if c.Retire.MaxCallers < 0 || c.Retire.MaxCallers > 1000 {
		add("retire.maxCallers", c.Retire.MaxCallers, "must be between 1 and 1000")
	}
	if c.Flags.File != "" && c.Flags.Flagd != "" {
		add("flags", c.Flags, "set file or flagd, not both")
	}
	seen := map[string]int{}
	seenPath := map[string]int{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if j, dup := seen[r.Name]; dup {
			add(p+".name", r.Name, "duplicates routes[%d].name", j)
		}
		seen[r.Name] = i
		if r.Name == c.DefaultRoute.Name {
			add(p+".name", r.Name, "is the default route's name")
		}
		if j, dup := seenPath[r.Path]; dup && r.Path != "" {
			add(p+".path", r.Path, "duplicates routes[%d].path", j)
		}
		seenPath[r.Path] = i
		c.validateRoute(p, r, add)
	}
	c.validateRoute("defaultRoute", c.DefaultRoute, add)
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// validateBreakerWindows refuses a route timeout longer than the breaker
// window of an upstream the route calls: that window cannot see the route's
// timeouts as one ratio (issue 15).
func (c *Config) validateBreakerWindows(add func(string, any, string, ...any)) {
	check := func(p string, r Route) {
		if r.Timeout <= 0 {
			return
		}
		for _, name := range []string{r.Legacy, r.New} {
			u, ok := c.Upstreams[name]
			if name == "" || !ok || u.Breaker.Disabled || u.Breaker.Window >= r.Timeout {
				continue
			}
			add(p+".timeout", r.Timeout, "is longer than upstreams.%s.breaker.window (%s): raise the window to at least the timeout", name, u.Breaker.Window)
		}
	}
	for i, r := range c.Routes {
		check(fmt.Sprintf("routes[%d]", i), r)
	}
	check("defaultRoute", c.DefaultRoute)
}

func (c *Config) validateRoute(p string, r Route, add func(string, any, string, ...any)) {
	if !routeName.MatchString(r.Name) {
		add(p+".name", r.Name, "is required and must match [a-z0-9_-]{1,64}")
	}
	if msg := checkPattern(r.Path); msg != "" {
		add(p+".path", r.Path, "%s", msg)
	}
	for j, m := range r.Methods {
		if !knownMethod[m] {
			add(fmt.Sprintf("%s.methods[%d]", p, j), m, "unknown HTTP method")
		}
	}
	if _, ok := c.Upstreams[r.Legacy]; !ok {
		add(p+".legacy", r.Legacy, "names no upstream (known: %s)", strings.Join(sortedKeys(c.Upstreams), ", "))
	}
	if r.New != "" {
		if _, ok := c.Upstreams[r.New]; !ok {
			add(p+".new", r.New, "names no upstream (known: %s)", strings.Join(sortedKeys(c.Upstreams), ", "))
		}
		if r.New == r.Legacy {
			add(p+".new", r.New, "must differ from legacy")
		}
	}
	validateLegacyRemoved(p, r, add)
	if r.Canary < 0 || r.Canary > 100 {
		add(p+".canary", r.Canary, "must be a percent between 0 and 100")
	}
	if r.Canary > 0 && r.New == "" {
		add(p+".canary", r.Canary, "needs a new upstream (routes[].new)")
	}
	if r.Flag != "" && c.Flags.File == "" && c.Flags.Flagd == "" {
		add(p+".flag", r.Flag, "needs a flag provider (flags.file or flags.flagd)")
	}
	if r.Flag != "" && r.New == "" {
		add(p+".flag", r.Flag, "needs a new upstream (routes[].new)")
	}
	if r.Timeout < 0 {
		add(p+".timeout", r.Timeout, "must not be negative")
	}
	if r.Retries < 0 || r.Retries > 3 {
		add(p+".retries", r.Retries, "must be between 0 and 3")
	}
	if r.RateLimit.RPS < 0 || r.RateLimit.Burst < 0 {
		add(p+".rateLimit", r.RateLimit, "must not be negative")
	}
	if r.Shadow != nil {
		c.validateShadow(p+".shadow", r, add)
	}
	validateAffinity(p, r, add)
	if r.Rollout != nil {
		c.validateRollout(p+".rollout", r, add)
	}
	if d := r.Deny; d != nil {
		if d.Status < 400 || d.Status > 599 {
			add(p+".deny.status", d.Status, "must be an error status, 400-599")
		}
		if !errorCode.MatchString(d.Code) {
			add(p+".deny.code", d.Code, "must match [A-Z0-9_]{1,64}, e.g. FORBIDDEN")
		}
		validateSuccessor(p+".deny.successor", d.Successor, add)
		if r.New != "" || r.Shadow != nil || r.Affinity != nil || r.Rollout != nil {
			add(p+".deny", "(set)", "a denied route sends nothing upstream: drop new, shadow, affinity and rollout")
		}
	}
}

var writeMethod = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

func (c *Config) validateShadow(p string, r Route, add func(string, any, string, ...any)) {
	s := r.Shadow
	if s.Percent < 0 || s.Percent > 100 {
		add(p+".percent", s.Percent, "must be a percent between 0 and 100")
	}
	if s.Target != "" {
		if _, ok := c.Upstreams[s.Target]; !ok {
			add(p+".target", s.Target, "names no upstream (known: %s)", strings.Join(sortedKeys(c.Upstreams), ", "))
		}
	} else if r.New == "" {
		add(p+".target", s.Target, "is required on a route without a new upstream")
	}
	for j, m := range s.Methods {
		if !knownMethod[m] {
			add(fmt.Sprintf("%s.methods[%d]", p, j), m, "unknown HTTP method")
		}
		if writeMethod[m] && !s.Writes {
			add(fmt.Sprintf("%s.methods[%d]", p, j), m, "is a write: mirror writes only with writes: true (the target must honour the X-Ficus-Shadow dry-run marker)")
		}
	}
	if s.MaxBodyBytes < 0 {
		add(p+".maxBodyBytes", s.MaxBodyBytes, "must not be negative")
	}
	if s.Timeout < 0 {
		add(p+".timeout", s.Timeout, "must not be negative")
	}
	if s.Concurrency < 0 || s.Concurrency > 10000 {
		add(p+".concurrency", s.Concurrency, "must be between 1 and 10000")
	}
	if s.Samples < 0 || s.Samples > 1000 {
		add(p+".samples", s.Samples, "must be between 1 and 1000")
	}
	if t := s.Compare.RelativeThreshold; t < 0 {
		add(p+".compare.relativeThreshold", t, "must not be negative")
	}
	if t := s.Compare.AbsoluteThreshold; t < 0 || t > 1 {
		add(p+".compare.absoluteThreshold", t, "must be a rate between 0 and 1")
	}
	for j, ir := range s.Compare.Ignore {
		ip := fmt.Sprintf("%s.compare.ignore[%d]", p, j)
		if !strings.HasPrefix(ir.Path, "/") {
			add(ip+".path", ir.Path, "must be a JSON pointer such as /items/*/updatedAt")
		}
		if ir.Owner == "" {
			add(ip+".owner", ir.Owner, "is required: who answers for this exception")
		}
		if ir.Reason == "" {
			add(ip+".reason", ir.Reason, "is required: why the difference is acceptable")
		}
		if _, err := time.Parse(time.DateOnly, ir.Expires); err != nil {
			add(ip+".expires", ir.Expires, "must be a date YYYY-MM-DD: every exception expires")
		}
	}
	for pat := range s.Compare.ArrayKeys {
		if !strings.HasPrefix(pat, "/") {
			add(p+".compare.arrayKeys", pat, "keys must be JSON pointers such as /items")
		}
	}
}

// checkPattern returns why a route path pattern is unusable, or "".
func checkPattern(s string) string {
	switch {
	case s == "":
		return "is required, e.g. /shop/catalog.do or /api/v1/products/*"
	case !strings.HasPrefix(s, "/"):
		return "must start with /"
	case strings.Contains(strings.TrimSuffix(s, "/*"), "*"):
		return "a * may only end the pattern, as /*"
	case strings.Contains(s, "//") || strings.Contains(s, "/./") || strings.Contains(s, "/../") || strings.HasSuffix(s, "/.."):
		return "must be a normalised path (no //, . or .. segments)"
	case strings.ContainsAny(s, "?#%"):
		return "must not contain ?, # or percent-escapes"
	}
	return ""
}

func checkToken(p string, t Token, needScopes bool, add func(string, any, string, ...any)) {
	if t.Name == "" {
		add(p+".name", t.Name, "is required (it names the actor in the audit log)")
	}
	if t.Value == "" && t.ValueEnv == "" {
		add(p, t.Name, "needs value or valueEnv")
	}
	if t.Value != "" && len(t.Value) < 16 {
		add(p+".value", "(redacted)", "must be at least 16 characters")
	}
	if needScopes && len(t.Scopes) == 0 {
		add(p+".scopes", t.Scopes, "at least one of read, write")
	}
	for j, s := range t.Scopes {
		if !knownScopes[s] {
			add(fmt.Sprintf("%s.scopes[%d]", p, j), s, "must be read or write")
		}
	}
}

// ParsePrefix parses a CIDR, or a single IP as a /32 (/128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
