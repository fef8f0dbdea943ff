// Package proxy forwards one request to one upstream: a dedicated fasthttp
// client per upstream (explicit timeouts, no hidden retries), its circuit
// breaker, hop-by-hop header hygiene and the classification of transport
// failures that the gateway turns into status codes, retries and fallbacks.
package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

// Failure classifies why an exchange with an upstream failed. Its String is
// the reason label of ficus_upstream_errors_total.
type Failure uint8

// Failure kinds.
const (
	// FailNone: the exchange succeeded (whatever the status).
	FailNone Failure = iota
	// FailConnect: no connection could be made; nothing was sent.
	FailConnect
	// FailTimeout: the upstream did not answer in time.
	FailTimeout
	// FailReset: the connection broke mid-exchange.
	FailReset
	// FailStatus5xx: the upstream answered with a 5xx status.
	FailStatus5xx
	// FailBreakerOpen: the breaker refused the attempt; nothing was sent.
	FailBreakerOpen
	// FailOther: anything else (malformed response, pool exhausted...).
	FailOther
	// NumFailures sizes arrays indexed by Failure.
	NumFailures
)

var failureNames = [...]string{
	FailNone: "none", FailConnect: "connect", FailTimeout: "timeout", FailReset: "reset",
	FailStatus5xx: "status_5xx", FailBreakerOpen: "breaker_open", FailOther: "other",
}

// String returns the metric label of f.
func (f Failure) String() string { return failureNames[f] }

// NotSent reports whether a failure of this kind proves the upstream never
// received a byte of the request, so that replaying it (even a write)
// elsewhere cannot duplicate an effect.
func (f Failure) NotSent() bool { return f == FailConnect || f == FailBreakerOpen }

// DialError marks an error raised while connecting: the request never left
// the gateway.
type DialError struct{ Err error }

func (e *DialError) Error() string { return "connecting to upstream: " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// ErrStatus5xx is what the breaker is told when an upstream answered 5xx:
// the exchange worked, but the upstream is failing.
var ErrStatus5xx = errors.New("upstream answered 5xx")

// ErrClientGone marks an exchange abandoned because the client went away;
// it is excluded from the breaker's counts (not the upstream's fault).
var ErrClientGone = errors.New("client went away")

// Classify maps an error from Do (or the breaker) to a Failure.
func Classify(err error) Failure {
	if err == nil {
		return FailNone
	}
	return classify(err)
}

// classify is Classify's slow path, kept apart so that the errors.As
// target does not cost the success path an allocation.
func classify(err error) Failure {
	var de *DialError
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return FailBreakerOpen
	case errors.As(err, &de), errors.Is(err, fasthttp.ErrDialTimeout):
		return FailConnect
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrTLSHandshakeTimeout), isNetTimeout(err):
		return FailTimeout
	case errors.Is(err, ErrStaleConn), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed):
		return FailReset
	case errors.Is(err, ErrStatus5xx):
		return FailStatus5xx
	}
	return FailOther
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Upstream is one configured backend: its client and its breaker.
type Upstream struct {
	// Name is the configured upstream name (breaker metric label).
	Name    string
	hc      *fasthttp.HostClient
	bp      *batchPool // ExchangeBatch's connections (batch.go)
	host    string
	https   bool
	timeout time.Duration
	breaker *gobreaker.CircuitBreaker[struct{}]
	// staleRetries counts requests re-sent because their pooled
	// connection died unused (staleconn.go: before anything was sent, or for a safe request before the answer began).
	staleRetries atomic.Uint64
	// lostSafe counts safe requests whose reused connection died before
	// their answer began (staleconn.go, rule 2).
	lostSafe atomic.Uint64
}

// Options tunes NewUpstream beyond the configuration.
type Options struct {
	// OnStateChange is told about breaker transitions (metrics, logs).
	OnStateChange func(upstream string, from, to gobreaker.State)
	// Dial, when set, opens connections instead of TCP (in-memory upstreams
	// in tests and benchmarks). Its errors count as connection failures.
	Dial func(addr string) (net.Conn, error)
	// MaxBufferedBody caps a response read whole (Do with stream false);
	// a larger one fails with fasthttp.ErrBodyTooLarge. Zero: no cap.
	MaxBufferedBody int
	// MaxConns, when positive, caps connections instead of the upstream's
	// maxConns (the shadow client: one connection per shadow worker).
	MaxConns int
	// ClientName is the client's name in its connection bookkeeping.
	// Empty: "ficus".
	ClientName string
	// LongestTimeout is the longest timeout any caller passes to Exchange
	// (a route may run longer than the upstream's own timeout). The
	// breaker's window is stretched by it so that a request that times out
	// is always counted (see newBreaker). Zero: the upstream's timeout.
	LongestTimeout time.Duration
}

// NewUpstream builds the client of one upstream. The client never retries
// by itself (RetryIf is false): retries are the gateway's decision, made
// only when the request provably never left.
func NewUpstream(name string, u config.Upstream, opts Options) (*Upstream, error) {
	pu, err := url.Parse(u.URL)
	if err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
		return nil, fmt.Errorf("upstream %s: url %q must be http(s)://host:port", name, u.URL)
	}
	https := pu.Scheme == "https"
	addr := pu.Host
	if pu.Port() == "" {
		addr = fasthttp.AddMissingPort(addr, https)
	}
	dialTimeout := u.DialTimeout
	rawDial := func(addr string, timeout time.Duration) (net.Conn, error) {
		if dialTimeout > 0 && (timeout <= 0 || dialTimeout < timeout) {
			timeout = dialTimeout
		}
		var c net.Conn
		var err error
		if opts.Dial != nil {
			c, err = opts.Dial(addr)
		} else {
			d := net.Dialer{Timeout: timeout}
			c, err = d.Dial("tcp", addr)
		}
		if err != nil {
			return nil, &DialError{Err: err}
		}
		return c, nil
	}
	var up *Upstream // set below, before any dial
	dial := func(addr string, timeout time.Duration) (net.Conn, error) {
		c, err := rawDial(addr, timeout)
		if err != nil {
			return nil, err
		}
		return newStaleConn(c, &up.lostSafe), nil
	}
	maxConns := u.MaxConns
	if opts.MaxConns > 0 {
		maxConns = opts.MaxConns
	}
	clientName := opts.ClientName
	if clientName == "" {
		clientName = "ficus"
	}
	up = &Upstream{
		Name:    name,
		host:    pu.Host,
		https:   https,
		timeout: u.Timeout,
		hc: &fasthttp.HostClient{
			Addr:                     addr,
			Name:                     clientName,
			NoDefaultUserAgentHeader: true,
			IsTLS:                    https,
			DialTimeout:              dial,
			MaxConns:                 maxConns,
			MaxIdleConnDuration:      u.MaxIdleConnDuration,
			MaxConnWaitTimeout:       u.Timeout,
			// No ReadTimeout or WriteTimeout: every Do carries its own
			// deadline (the route's timeout), which fasthttp applies to the
			// write, the read and a streamed body alike. Client-wide ones
			// would only cost two more clock readings per request.
			RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
			MaxIdemponentCallAttempts:     1,
			DisablePathNormalizing:        true,
			DisableHeaderNamesNormalizing: false,
			// Streaming is chosen per request (Do's stream argument):
			// fasthttp's stream bookkeeping costs four allocations and a
			// lock per response, worth paying only where bodies can be big.
			StreamResponseBody:  false,
			MaxResponseBodySize: opts.MaxBufferedBody,
		},
	}
	// ExchangeBatch's own connections, dialled on first use: a pipelined
	// connection carries many requests at once, which the stale-connection
	// check (staleconn.go) does not model; ExchangeBatch handles a
	// connection closed while idle itself.
	up.bp = &batchPool{max: max(1, maxConns), dial: func() (net.Conn, error) {
		d := u.DialTimeout
		if d <= 0 {
			d = u.Timeout
		}
		return rawDial(addr, d)
	}}
	if !u.Breaker.Disabled {
		longest := max(opts.LongestTimeout, u.Timeout)
		if u.DialTimeout > 0 {
			longest += u.DialTimeout // a dial runs before the request's own deadline starts to matter
		}
		up.breaker = newBreaker(name, u.Breaker, longest, opts.OnStateChange)
	}
	return up, nil
}

// newBreaker builds the breaker of one upstream. longest bounds how long
// one exchange can take.
//
// gobreaker files an outcome under the bucket where the request *started*
// and drops it when that bucket has left the rolling window by the time the
// request ends. A window no longer than the timeout therefore never counted
// a timeout (issue 15: 10 s window, 10 s timeout, 8 timeouts in a row, the
// breaker stayed closed). The breaker's internal window is the configured
// one plus longest and one bucket, so every exchange that ends, however
// slowly, lands in a bucket still counted: timeouts always count. The
// price is that an outcome stays counted up to longest after the
// configured window; for ratios over seconds that is immaterial.
//
// The window is always split into buckets: a fixed window (no buckets)
// would drop outcomes the same way at every window reset.
func newBreaker(name string, b config.Breaker, longest time.Duration, onChange func(string, gobreaker.State, gobreaker.State)) *gobreaker.CircuitBreaker[struct{}] {
	bucket := max(b.Window/10, time.Millisecond)
	st := gobreaker.Settings{
		Name:         name,
		MaxRequests:  b.HalfOpenProbes,
		Interval:     b.Window + longest + bucket,
		BucketPeriod: bucket,
		Timeout:      b.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if b.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= b.ConsecutiveFailures {
				return true
			}
			// Requests counts in-flight and excluded requests too; judge
			// only finished, counted ones.
			done := c.TotalSuccesses + c.TotalFailures
			return done >= b.MinRequests && done > 0 && float64(c.TotalFailures)/float64(done) >= b.FailureRatio
		},
		// Neither a client that left, nor a full pool, nor an answer over
		// the size cap says anything about the upstream's health.
		IsExcluded: func(err error) bool {
			return errors.Is(err, ErrClientGone) || errors.Is(err, fasthttp.ErrNoFreeConns) || errors.Is(err, fasthttp.ErrBodyTooLarge)
		},
	}
	if onChange != nil {
		st.OnStateChange = onChange
	}
	return gobreaker.NewCircuitBreaker[struct{}](st)
}

// Exchange sends req to the upstream through its breaker and tells the
// breaker the outcome: a transport error or a 5xx answer counts as a
// failure (proxy.Do reports no error for a 5xx). It returns how the
// exchange failed (FailNone on success, FailBreakerOpen when the breaker
// refused and nothing was sent) and the error behind it. stream and the
// body's ownership are as for Do.
//
// The breaker's Execute runs the exchange in place: unlike the two-step
// breaker's Allow, it needs no per-request closure on the heap.
func (u *Upstream) Exchange(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, stream bool) (Failure, error) {
	if u.breaker == nil {
		return u.exchange(req, resp, timeout, stream)
	}
	f := FailBreakerOpen // stays so when Execute refuses without calling
	_, err := u.breaker.Execute(func() (struct{}, error) {
		var err error
		f, err = u.exchange(req, resp, timeout, stream)
		return struct{}{}, err
	})
	return f, err
}

func (u *Upstream) exchange(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, stream bool) (Failure, error) {
	if err := u.Do(req, resp, timeout, stream); err != nil {
		return Classify(err), err
	}
	if resp.StatusCode() >= 500 {
		return FailStatus5xx, ErrStatus5xx
	}
	return FailNone, nil
}

// State returns "closed", "half-open" or "open" ("closed" when the breaker
// is disabled).
func (u *Upstream) State() gobreaker.State {
	if u.breaker == nil {
		return gobreaker.StateClosed
	}
	return u.breaker.State()
}

// Timeout is the upstream's default response timeout.
func (u *Upstream) Timeout() time.Duration { return u.timeout }

// Do sends req (whose path and query the caller has already set) to the
// upstream and fills resp, within timeout. The Host header is rewritten to
// the upstream's. With stream, the response body is a stream the caller
// must either read or close (resp.CloseBodyStream); the timeout keeps
// running while it is read. Without, the body is read whole (at most
// Options.MaxBufferedBody bytes). Do sends an unsafe request at most once;
// it may try a second connection when the first one proved to be closed
// before any byte was sent, and for a safe request (GET, HEAD, OPTIONS)
// when a reused connection died before the answer began (ErrStaleConn).
func (u *Upstream) Do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, stream bool) error {
	resp.StreamBody = stream
	if timeout <= 0 {
		timeout = u.timeout
	}
	uri := req.URI()
	if u.https {
		uri.SetScheme("https")
	} else {
		uri.SetScheme("http")
	}
	uri.SetHost(u.host)
	req.UseHostHeader = false
	req.Header.SetHost(u.host)
	deadline := time.Now().Add(timeout)
	lost := u.lostSafe.Load()
	err := u.hc.DoDeadline(req, resp, deadline)
	if err != nil && !req.IsBodyStream() && (errors.Is(err, ErrStaleConn) ||
		u.lostSafe.Load() != lost && Classify(err) == FailReset && isSafe(&req.Header)) {
		// The upstream never saw the request, or the request is safe to
		// repeat (see ErrStaleConn). The other
		// idle connections are most likely dead too (a restart): drop them
		// so that the one retry dials afresh.
		u.hc.CloseIdleConnections()
		u.staleRetries.Add(1)
		resp.Reset()
		resp.StreamBody = stream
		err = u.hc.DoDeadline(req, resp, deadline)
	}
	return err
}

// isSafe reports whether the request's method is safe to re-send
// (staleconn.go, rule 2).
func isSafe(h *fasthttp.RequestHeader) bool { return isSafeMethod(h.Method()) }

// StaleRetries is how many requests were re-sent because their pooled
// connection had been closed by the upstream before anything was sent, or
// (safe requests) before the answer began.
func (u *Upstream) StaleRetries() uint64 { return u.staleRetries.Load() }

// CloseIdle closes pooled idle connections (used when draining).
func (u *Upstream) CloseIdle() {
	u.hc.CloseIdleConnections()
	u.bp.closeIdle()
}
