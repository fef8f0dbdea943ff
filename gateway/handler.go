package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/intent"
	"github.com/ficus-gw/ficus/gateway/proxy"
	"github.com/ficus-gw/ficus/gateway/route"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
)

// exchange is the state of one request on its way through handle.
type exchange struct {
	gen      *generation // what the request is served with
	ri       int
	close    bool // the client asked to close its connection
	backend  decide.Backend
	reason   decide.Reason
	method   route.Method
	fallback proxy.Failure  // FailNone unless the legacy side stood in
	failure  proxy.Failure  // the last failure of the serving backend
	err      error          // its error, for the log
	shadow   *shadow.Ticket // non-nil when the request is mirrored
	bound    bool           // a write whose intent is in the ledger (affinity.go)
	intent   intent.Claim   // its claim, when bound
	// answered: the serving backend produced a response (any status). A
	// request the gateway refused itself (fence, 405, 429, breaker open)
	// or that failed in transport is not legacy use for the retirement
	// tracker.
	answered bool
}

// handle is the whole proxy path. It returns *Error values that
// errorHandler writes; everything else about the request is recorded in
// finish.
func (g *Gateway) handle(c *fiber.Ctx) (err error) {
	// fasthttp read the clock when the request's headers were in; reading
	// it again would only cost time.
	start := c.Context().Time()
	if start.IsZero() {
		start = time.Now()
	}
	g.m.inFlight.Add(1)
	peer, trusted := g.peer(c)
	var idBuf [requestIDMax]byte
	rid := g.ids.requestID(c, idBuf[:0], trusted)
	gen := g.gen.Load() // one generation for the whole request, even across a reload
	x := exchange{gen: gen, ri: gen.table.Default(), method: route.ParseMethod(c.Request().Header.Method())}
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("panic serving request", "request_id", string(rid), "panic", r, "stack", string(debug.Stack()))
			err = errInternal
		}
		g.finish(c, &x, rid, err, start)
		if x.shadow != nil {
			// The answer is complete (relay read any small body): copying
			// it is a memcpy, and the shadow exchange runs elsewhere.
			g.shadow.Complete(x.shadow, x.backend, c.Response(), err != nil)
		}
		g.m.inFlight.Add(-1)
	}()
	req := &c.Request().Header
	// The Decider reads the id from here; prepare sets it again after the
	// hop-by-hop strip.
	req.SetCanonical(keyRequestID, rid)

	if len(req.Host()) == 0 {
		return errMissingHost
	}
	// One pass over the header lines as received: fasthttp's parsed view
	// hides some of what matters here (see proxy.Screen).
	screen := proxy.ScreenRequestHeaders(req.RawHeaders())
	switch {
	case screen&proxy.ScreenAmbiguousFraming != 0:
		return errAmbiguousFraming
	case screen&proxy.ScreenBadName != 0:
		return errBadHeaderName
	case screen&proxy.ScreenUnderscore != 0, screen&proxy.ScreenForwarding != 0 && !trusted:
		proxy.StripForwarding(req, trusted)
	}
	var pathBuf, keyBuf [256]byte
	path, perr := route.Normalize(pathBuf[:0], c.Request().URI().PathOriginal())
	if perr != nil {
		x.err = perr
		return errBadPath
	}
	// Routes match the path without ";parameters"; the upstream receives
	// them (route.MatchKey).
	x.ri = gen.table.Match(route.MatchKey(keyBuf[:0], path))
	rs := &gen.routes[x.ri]
	if rs.deny != nil {
		return rs.deny
	}
	if !rs.route.Allows(x.method) {
		return rs.err405
	}
	if rs.limiter != nil {
		if ok, wait := rs.limiter.allow(g.now().UnixNano()); !ok {
			g.m.perRoute[x.ri].rateLimited.Inc()
			return &Error{Status: fiber.StatusTooManyRequests, Code: CodeRateLimited,
				Message: "this route is over its request rate; retry later", RetryAfter: int((wait + time.Second - 1) / time.Second)}
		}
	}
	if rs.legacyRemoved {
		x.backend = decide.New // reason: default; nothing is decided any more
	} else if rs.ups[decide.New] != nil {
		// The header's copy, not rid: handing the stack buffer to an
		// interface method would move it to the heap on every request.
		d := g.decider.Decide(c, x.ri, utils.UnsafeString(req.PeekCanonical(keyRequestID)))
		x.backend, x.reason = d.Backend, d.Reason
		if x.backend > decide.New || int(x.reason) >= numReasons { // a buggy Decider must not index out of range
			x.backend, x.reason = decide.Legacy, decide.ReasonError
		}
		if err := g.bindIntent(c, rs, &x); err != nil {
			return err
		}
	}

	// Connection: close is hop-by-hop: it must not reach the upstream, but
	// the client's connection still closes after this answer.
	x.close = req.ConnectionClose()
	g.prepare(c, path, peer, trusted, rid)
	// Copied now, as the upstream will receive it; Begin never blocks.
	x.shadow = g.shadow.Begin(x.ri, x.backend, c.Request(), rid)
	x.failure = g.attempt(c, rs, &x)
	if x.failure != proxy.FailNone && x.backend == decide.New && rs.fallback && (x.method.Safe() || x.failure.NotSent()) {
		if x.bound && !g.intentUnsent(rs, &x, true, rid) {
			g.m.perRoute[x.ri].decisions[x.backend][x.reason].Inc()
			return errIntentPending
		}
		resp := c.Response()
		if resp.IsBodyStream() {
			_ = resp.CloseBodyStream()
		}
		g.m.perRoute[x.ri].fallbacks.Inc()
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "new side failed; legacy serves the request",
			slog.String("request_id", string(rid)), slog.String("route", rs.name),
			slog.String("failure", x.failure.String()), slog.Any("err", x.err))
		x.fallback, x.backend, x.reason, x.err = x.failure, decide.Legacy, decide.ReasonFallback, nil
		x.failure = g.attempt(c, rs, &x)
	}
	if x.bound && x.failure.NotSent() {
		g.intentUnsent(rs, &x, false, rid)
	}
	g.m.perRoute[x.ri].decisions[x.backend][x.reason].Inc()
	switch x.failure {
	case proxy.FailNone, proxy.FailStatus5xx:
		x.answered = true
	case proxy.FailBreakerOpen:
		return &Error{Status: fiber.StatusServiceUnavailable, Code: CodeBackendUnavailable,
			Message: "the backend is failing and temporarily not called; retry later", RetryAfter: 1}
	case proxy.FailConnect:
		return errUpstreamUnr
	case proxy.FailTimeout:
		return errUpstreamTO
	case proxy.FailReset:
		return errUpstreamReset
	default:
		return errUpstreamOther
	}
	return g.relay(c, rs, &x)
}

// prepare turns the client's request into the upstream request in place:
// hop-by-hop fields out, X-Forwarded-* in, the gateway's request id, the
// normalised path with the original query.
func (g *Gateway) prepare(c *fiber.Ctx, path []byte, peer netip.Addr, trusted bool, rid []byte) {
	r := c.Request()
	proxy.StripRequestHopByHop(&r.Header)
	// After the strip: a client that lists X-Request-Id in Connection must
	// not take the gateway's id away from the upstream.
	r.Header.SetCanonical(keyRequestID, rid)
	proto := "http"
	if c.Context().IsTLS() {
		proto = "https"
	}
	proxy.SetForwarded(&r.Header, proxy.Forwarded{Peer: peer, Trusted: trusted, Proto: proto}, r.Header.Host())
	// The shadow marker is the gateway's to set: from a client it would
	// turn a write into a dry run and draw on the services' shadow budget.
	if len(r.Header.PeekCanonical(keyShadow)) > 0 {
		r.Header.DelBytes(keyShadow)
	}
	// The override token is the gateway's secret; upstreams never see it.
	if len(g.tokenHeader) > 0 && len(r.Header.PeekCanonical(g.tokenHeader)) > 0 {
		r.Header.DelBytes(g.tokenHeader)
	}
	uri := r.URI()
	uri.SetPathBytes(path)
	// Re-setting the raw query drops any parsed form a Decider made, so the
	// upstream receives the client's bytes, not a re-encoding.
	uri.SetQueryStringBytes(uri.QueryString())
}

// peer returns the address of the directly connected client and whether it
// is a trusted proxy (trustedProxies).
func (g *Gateway) peer(c *fiber.Ctx) (netip.Addr, bool) {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	peer = peer.Unmap()
	return peer, len(g.trust) > 0 && g.trust.Contains(peer)
}

// attempt sends the request to x.backend through its breaker, retrying a
// safe request whose connection could not even be opened, and returns how
// the last try failed (FailNone on success).
func (g *Gateway) attempt(c *fiber.Ctx, rs *routeState, x *exchange) proxy.Failure {
	b := x.backend
	if rs.ups[b] == nil {
		b = decide.Legacy
		x.backend = b
	}
	up := rs.ups[b]
	rm := &g.m.perRoute[x.ri]
	for try := 0; ; try++ {
		f, err := up.Exchange(c.Request(), c.Response(), rs.timeout[b], rs.stream)
		if f == proxy.FailNone {
			return f
		}
		rm.upErrors[b][f].Inc()
		x.err = err
		if f == proxy.FailConnect && x.method.Safe() && try < rs.retries {
			rm.retries[b].Inc()
			continue
		}
		return f
	}
}

// relay finishes a response the upstream produced: hop-by-hop fields out,
// and a body small enough (and of known length) read now, so a connection
// that breaks mid-body becomes a clean 502 instead of a truncated answer.
// Larger or unknown-length bodies stay streams that the server copies to
// the client as they arrive.
func (g *Gateway) relay(c *fiber.Ctx, rs *routeState, x *exchange) error {
	resp := c.Response()
	proxy.StripResponseHopByHop(&resp.Header)
	if !resp.IsBodyStream() {
		return nil
	}
	n := resp.Header.ContentLength()
	if n < 0 || n > g.stream {
		return nil
	}
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	body := (*bp)[:n]
	_, err := io.ReadFull(resp.BodyStream(), body)
	if err != nil {
		_ = resp.CloseBodyStream()
		x.failure, x.err = proxy.FailReset, err
		g.m.perRoute[x.ri].upErrors[x.backend][proxy.FailReset].Inc()
		return errUpstreamReset
	}
	if err := resp.CloseBodyStream(); err != nil {
		x.err = err
	}
	resp.SetBody(body)
	return nil
}

// bodyPool holds scratch buffers for small upstream bodies.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// finish stamps the gateway's headers and records the request.
// Response header names and values in canonical form, set with
// SetCanonical so that fasthttp does not normalise them on every request.
var (
	keyRequestID = []byte(apierr.RequestIDHeader)
	keyRoute     = []byte(HeaderRoute)
	keyShadow    = []byte(shadow.HeaderShadow)
	keyBackend   = []byte(HeaderBackend)
	backendValue = [numBackends][]byte{decide.Legacy: []byte(decide.Legacy.String()), decide.New: []byte(decide.New.String())}
)

func (g *Gateway) finish(c *fiber.Ctx, x *exchange, rid []byte, err error, start time.Time) {
	h := &c.Response().Header
	h.SetCanonical(keyRequestID, rid)
	if x.close || g.draining.Load() { // draining: move keep-alive clients elsewhere
		h.SetConnectionClose()
	}
	rs := &x.gen.routes[x.ri]
	h.SetCanonical(keyRoute, rs.nameBytes)
	h.SetCanonical(keyBackend, backendValue[x.backend])
	if x.fallback != proxy.FailNone {
		h.Set(HeaderFallback, x.fallback.String())
	}
	status := c.Response().StatusCode()
	if err != nil {
		e, _ := toError(err)
		status = e.Status
	}
	// One clock reading serves the duration, the per-second stats and the
	// retirement tracker.
	end := time.Now()
	elapsed := end.Sub(start)
	at := end
	if g.clock != nil {
		at = g.clock()
	}
	g.m.request(x.ri, x.backend, x.method, status, rs.name)
	g.m.perRoute[x.ri].duration[x.backend].Observe(elapsed.Seconds())
	g.m.bytes(x.ri, x.backend, c.Request().Header.ContentLength(), c.Response().Header.ContentLength())
	sec := at.Unix()
	if x.backend == decide.Legacy && x.answered && g.hits != nil {
		g.hits.Hit(x.ri, c, at)
	}
	st := &g.stats[x.ri][x.backend]
	st.reqs.add(sec)
	if status >= 500 {
		st.errs.add(sec)
	}
	ctx := context.Background()
	switch {
	case status >= 500 || x.err != nil:
		// Server-side failures at warn, rate-limited (a few lines per
		// window, counting the suppressed); refusals of a client's request
		// at debug. Metrics count every one.
		lvl, suppressed := slog.LevelDebug, 0
		if status >= 500 {
			var ok bool
			if ok, suppressed = g.failures.Allow(); !ok {
				break
			}
			lvl = slog.LevelWarn
		}
		g.log.LogAttrs(ctx, lvl, "request failed",
			slog.String("request_id", string(rid)), slog.String("route", rs.name),
			slog.String("backend", x.backend.String()), slog.Int("status", status),
			slog.Duration("duration", elapsed), slog.String("failure", x.failure.String()), slog.Any("err", x.err),
			slog.Int("suppressed_since_last", suppressed))
	case g.log.Enabled(ctx, slog.LevelDebug):
		g.log.LogAttrs(ctx, slog.LevelDebug, "request",
			slog.String("request_id", string(rid)), slog.String("route", rs.name),
			slog.String("backend", x.backend.String()), slog.String("method", x.method.String()),
			slog.Int("status", status), slog.Duration("duration", elapsed))
	}
}
