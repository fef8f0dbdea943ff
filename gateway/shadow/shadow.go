// Package shadow mirrors a sample of a route's requests to a second backend,
// fire and forget, and compares both answers in the new contract's terms.
//
// The gateway calls Begin before proxying and Complete after the primary
// answer is complete. Begin decides (deterministically, by request id)
// whether the request is mirrored and copies it; Complete copies the
// primary's status, headers and body. Both are memcpy-bounded and never
// wait: Complete puts the copy on the route's bounded queue, and the
// exchange with the shadow target, the comparison and the SQLite write of a
// differing sample run on the route's workers. Workers start when copies
// wait and none is idle, up to config.Shadow.Concurrency (the cap on
// exchanges in flight with the target), and stop after a second idle. A
// copy finding the queue full (queueDepth copies, or queueBytes of bodies,
// already waiting or in flight), or the target's shadow breaker open, is
// dropped and counted: a slow or hanging target fills the queue and then
// costs the primary one failed atomic add per request.
//
// Shadow requests carry X-Ficus-Shadow: 1. Writes are mirrored only on
// routes with writes: true, with an Idempotency-Key (the client's, or one
// derived from the request id), to a target that treats the marker as a
// dry run (newsvc validates and answers without changing anything).
//
// Comparison normalises both answers to the new contract: "new" and "acl"
// upstreams already speak it; a "legacy" upstream needs a Mapping for the
// route (ProductDetail is one). Status, the configured headers and the JSON
// body are diffed structurally (jsondiff), arrays matched by key where
// configured, minus the ignore rules still in force. With noise: true the
// request is also sent to the primary side a second time, and a field
// counts as a real difference only when its difference rate exceeds its
// primary-vs-primary noise rate by the configured thresholds (as Diffy).
package shadow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

// Header names a shadow request carries.
const (
	// HeaderShadow marks a mirrored request; "1" asks the target for a dry
	// run (validate and answer, change nothing, emit no event).
	HeaderShadow = "X-Ficus-Shadow"
	// HeaderIdempotencyKey is reused from the client or derived from the
	// request id on mirrored writes.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderRequestID is the gateway's request id, kept on the copy so the
	// target's log lines join the primary's.
	HeaderRequestID = "X-Request-Id"
)

// DefaultMaxCompareBytes is the default of Options.MaxCompareBytes.
const DefaultMaxCompareBytes = 1 << 20

// storeTimeout bounds one SQLite write of a sample.
const storeTimeout = 5 * time.Second

// Queue bounds, per route. A copy holds its place from Begin (before the
// primary is proxied) to the end of its comparison, so the depth covers the
// requests in flight on the primary path plus a backlog of a few
// milliseconds at tens of thousands of requests per second. The byte bound
// caps the memory queued copies hold (request and primary body) whatever
// their size.
const (
	queueDepthPerWorker = 64
	minQueueDepth       = 256
	maxQueueDepth       = 8192
	queueBytes          = 16 << 20
	// batchGather is how long a worker with few copies waits for more
	// before it sends them (see work).
	batchGather = 500 * time.Microsecond
	// workerIdle is how long a worker waits for a copy before it stops.
	workerIdle = time.Second
)

// ErrUnknownRoute is returned by Report for a route without shadow traffic.
var ErrUnknownRoute = errors.New("shadow: no such route with shadow traffic")

// Options are the dependencies of New.
type Options struct {
	// Config is the validated configuration. Required. Routes are indexed
	// as the gateway indexes them: Config.Routes, then DefaultRoute.
	Config *config.Config
	// Registry receives the ficus_shadow_* metrics. Required.
	Registry *prometheus.Registry
	// Logger receives structured logs. Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock of ignore-rule expiry and sample times. Nil: time.Now.
	Now func() time.Time
	// Mappings, by route name, make legacy-kind answers comparable (see
	// Mapping). A route with a legacy-kind side and no mapping is skipped.
	Mappings map[string]Mapping
	// MaxCompareBytes caps each answer's body compared, in bytes; a larger
	// one (or a streamed primary answer) is not compared (skipped). It also
	// bounds the memory a pending exchange holds. Zero: 1 MiB.
	MaxCompareBytes int
	// Dial, when set, connects to upstreams instead of TCP: it receives the
	// upstream name and host:port (tests). Nil: TCP with dialTimeout.
	Dial func(upstream, addr string) (net.Conn, error)
}

// Shadow mirrors and compares. Create it with New; it is safe for
// concurrent use. Close it after the gateway stopped serving.
type Shadow struct {
	log        *slog.Logger
	now        func() time.Time
	routes     []*routeShadow // gateway route index -> state; nil: no shadow
	byName     map[string]*routeShadow
	order      []*routeShadow // shadowed routes in config order
	m          *metrics
	store      *store
	maxCompare int
	closing    atomic.Bool
	done       chan struct{} // closed by Close: idle workers stop
	tickets    sync.Pool
	batches    sync.Pool // *batch of workers that stopped
	// comparing bounds the comparisons (decode, diff, store) running at
	// once to half the CPUs: exchanges with a slow target finish in bursts,
	// and a burst of comparisons must leave the primary path CPUs to run on.
	comparing chan struct{}
}

// side is Shadow's own client of one upstream: a connection pool and a
// breaker apart from the primary path's, so a hanging shadow target can
// neither take the primary's connections nor trip its breaker.
type side struct {
	name string
	kind string
	// up is the side's shadow client, built by the proxy's own upstream
	// stack (proxy.NewUpstream): the same timeouts, breaker rules and
	// connection hygiene as the primary path, with its own connections and
	// its own breaker, so shadow traffic never trips the primary's.
	up *proxy.Upstream
}

// routeShadow is one shadowed route.
type routeShadow struct {
	name      string
	cfg       config.Shadow
	threshold uint64 // sampled when hash(request id) % 10000 < threshold
	upstreams [2]*side
	target    *side // configured target; nil: the side that did not serve
	// queue holds completed copies for the workers. Its capacity is
	// limit, and pending (copies between Begin and the end of their
	// exchange) never exceeds limit, so a send on it never blocks.
	queue      chan *Ticket
	limit      int64
	pending    atomic.Int64
	bytes      atomic.Int64 // body bytes held by pending copies
	maxWorkers int32
	workers    atomic.Int32 // running
	idle       atomic.Int32 // waiting on queue
	// batch is how many copies a worker sends together now (see adapt).
	batch   atomic.Int32
	cmp     *comparer
	mapping Mapping
	stats   routeStats
	m       routeMetrics
}

// New builds the shadow state of every route with a shadow config and
// Percent > 0, registers its metrics and, when there is at least one such
// route, opens the sample store (Config.Shadow.DB).
func New(opts Options) (*Shadow, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("shadow: Options.Config is required")
	}
	if opts.Registry == nil {
		return nil, errors.New("shadow: Options.Registry is required")
	}
	s := &Shadow{log: opts.Logger, now: opts.Now, maxCompare: opts.MaxCompareBytes, byName: map[string]*routeShadow{}, done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxCompare <= 0 {
		s.maxCompare = DefaultMaxCompareBytes
	}
	s.tickets.New = func() any { return new(Ticket) }
	s.batches.New = func() any { return newBatch() }
	s.comparing = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
	all := append(slices.Clip(cfg.Routes), cfg.DefaultRoute)
	s.routes = make([]*routeShadow, len(all))

	// Size each upstream's shadow pool for every route that may send to it
	// (as target, or as the primary side asked again for noise).
	conns := map[string]int{}
	timeouts := map[string]time.Duration{}
	for _, r := range all {
		if r.Shadow == nil || r.Shadow.Percent <= 0 {
			continue
		}
		for _, n := range []string{r.Legacy, r.New, r.Shadow.Target} {
			if n != "" {
				conns[n] += r.Shadow.Concurrency
				timeouts[n] = max(timeouts[n], r.Shadow.Timeout)
			}
		}
	}
	sides := map[string]*side{}
	for n, c := range conns {
		u, ok := cfg.Upstreams[n]
		if !ok {
			return nil, fmt.Errorf("shadow: unknown upstream %q", n)
		}
		sd, err := newSide(n, u, c, timeouts[n], s.maxCompare, opts.Dial)
		if err != nil {
			return nil, err
		}
		sides[n] = sd
	}
	for i, r := range all {
		if r.Shadow == nil || r.Shadow.Percent <= 0 {
			continue
		}
		cmp, err := newComparer(r.Shadow.Compare)
		if err != nil {
			return nil, fmt.Errorf("shadow: route %s: %w", r.Name, err)
		}
		workers := max(1, r.Shadow.Concurrency)
		depth := min(max(minQueueDepth, queueDepthPerWorker*workers), maxQueueDepth)
		rs := &routeShadow{
			name:       r.Name,
			cfg:        *r.Shadow,
			threshold:  uint64(r.Shadow.Percent*100 + 0.5),
			queue:      make(chan *Ticket, depth),
			limit:      int64(depth),
			maxWorkers: int32(workers),
			cmp:        cmp,
			mapping:    opts.Mappings[r.Name],
		}
		rs.stats.fields = map[string]*fieldStats{}
		rs.batch.Store(firstBatch)
		rs.upstreams[decide.Legacy] = sides[r.Legacy]
		if r.New != "" {
			rs.upstreams[decide.New] = sides[r.New]
		}
		if r.Shadow.Target != "" {
			rs.target = sides[r.Shadow.Target]
		}
		s.routes[i] = rs
		s.byName[r.Name] = rs
		s.order = append(s.order, rs)
	}
	var err error
	if s.m, err = newMetrics(opts.Registry, s.routes, func(rs *routeShadow) float64 {
		return float64(len(rs.cmp.expired(s.now())))
	}); err != nil {
		return nil, fmt.Errorf("shadow: registering metrics: %w", err)
	}
	if len(s.order) > 0 {
		if s.store, err = openStore(context.Background(), cfg.Shadow.DB); err != nil {
			return nil, fmt.Errorf("shadow: %w", err)
		}
	}
	return s, nil
}

func newSide(name string, u config.Upstream, conns int, timeout time.Duration, maxBody int, dialFn func(string, string) (net.Conn, error)) (*side, error) {
	var dial func(string) (net.Conn, error)
	if dialFn != nil {
		dial = func(addr string) (net.Conn, error) { return dialFn(name, addr) }
	}
	// One connection per possible in-flight exchange: a worker never waits
	// for a connection, and a hanging target holds at most these.
	up, err := proxy.NewUpstream(name, u, proxy.Options{
		Dial: dial, MaxConns: conns, ClientName: "ficus-shadow",
		MaxBufferedBody: maxBody, LongestTimeout: timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("shadow: %w", err)
	}
	return &side{name: name, kind: u.Kind, up: up}, nil
}

// open reports whether the side's shadow breaker refuses requests.
func (sd *side) open() bool { return sd.up.State() == gobreaker.StateOpen }

// do sends req to the side through its breaker, within timeout. A 5xx
// answer is an answer to compare (the breaker counts it as a failure); the
// error is for transport failures and the breaker's refusal.
func (sd *side) do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	f, err := sd.up.Exchange(req, resp, timeout, false)
	if f == proxy.FailStatus5xx {
		return nil
	}
	return err
}

// Ticket is one mirrored request between Begin and the end of its shadow
// exchange. It owns copies only: nothing in it points into the Fiber
// context.
type Ticket struct {
	rs      *routeShadow
	req     fasthttp.Request // the request as the primary received it
	rid     []byte
	served  decide.Backend
	pstatus int
	// phead is the primary answer's header; the worker picks the compared
	// ones out of it, so the primary path copies bytes and builds nothing.
	phead fasthttp.ResponseHeader
	pbody []byte
	size  int64 // body bytes counted in rs.bytes
}

// sample maps a request id to 0..9999, the same for the same id.
func sample(id []byte) uint64 {
	h := uint64(14695981039346656037) // FNV-1a 64
	for _, c := range id {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h % 10000
}

// Begin decides whether the request is mirrored and, when it is, copies it
// and reserves a worker. It must be called in the handler (req belongs to
// the Fiber context), after the request was prepared for the upstream and
// before it is sent. It never blocks; it returns nil when the request is
// not mirrored (not sampled, not eligible, skipped or dropped: the last two
// are counted). A non-nil Ticket must be passed to Complete exactly once.
//
// The gateway does not set StreamRequestBody, so req.Body() is the whole
// body; were it set, Body() would read the stream first, which CopyTo
// alone does not.
func (s *Shadow) Begin(route int, served decide.Backend, req *fasthttp.Request, requestID []byte) *Ticket {
	if route < 0 || route >= len(s.routes) {
		return nil
	}
	rs := s.routes[route]
	if rs == nil || sample(requestID) >= rs.threshold || s.closing.Load() {
		return nil
	}
	if !slices.Contains(rs.cfg.Methods, string(req.Header.Method())) {
		return nil
	}
	if len(req.Body()) > rs.cfg.MaxBodyBytes {
		s.count(rs, ResultSkipped)
		return nil
	}
	// The place first: when the queue is full (a slow target) the drop
	// costs two atomic adds, not the breaker's mutex.
	if rs.pending.Add(1) > rs.limit {
		rs.pending.Add(-1)
		s.count(rs, ResultDropped)
		return nil
	}
	// Close sets closing before it waits for pending to reach zero: a
	// Begin that raced with it sees closing here and gives its place back.
	if s.closing.Load() {
		rs.pending.Add(-1)
		return nil
	}
	if tgt := rs.targetFor(served); tgt != nil && tgt.open() {
		rs.pending.Add(-1)
		s.count(rs, ResultDropped)
		return nil
	}
	s.m.inFlight.Add(1)
	t := s.tickets.Get().(*Ticket)
	t.rs = rs
	req.CopyTo(&t.req)
	t.rid = append(t.rid[:0], requestID...)
	return t
}

// Complete copies the primary answer into t and hands t to a worker. It
// must be called in the handler, after the answer is complete (a small
// body read into resp), with the backend that actually served it; failed
// says the gateway answered an error of its own (the primary produced no
// answer to compare). It does not wait for the shadow exchange.
func (s *Shadow) Complete(t *Ticket, served decide.Backend, resp *fasthttp.Response, failed bool) {
	if t == nil {
		return
	}
	rs := t.rs
	if failed || resp.IsBodyStream() || len(resp.Body()) > s.maxCompare || rs.targetFor(served) == nil {
		s.count(rs, ResultSkipped)
		s.release(t)
		return
	}
	size := int64(len(resp.Body()) + len(t.req.Body()))
	if rs.bytes.Add(size) > queueBytes {
		rs.bytes.Add(-size)
		s.count(rs, ResultDropped)
		s.release(t)
		return
	}
	t.size = size
	t.served = served
	t.pstatus = resp.StatusCode()
	resp.Header.CopyTo(&t.phead)
	t.pbody = append(t.pbody[:0], resp.Body()...)
	rs.queue <- t // never blocks: see routeShadow.queue
	s.wake(rs)
}

// wake starts a worker for rs when none runs, or when the running ones
// are all busy and a batch's worth of copies waits: a worker takes the
// waiting copies a batch at a time (see adapt), so against a fast target
// one worker keeps up with thousands of copies per second and more start
// only for a backlog, while against a slow one (batches of one) each
// waiting copy may get a worker, up to concurrency.
func (s *Shadow) wake(rs *routeShadow) {
	if rs.workers.Load() > 0 && (rs.idle.Load() > 0 || len(rs.queue) < int(rs.batch.Load())) {
		return
	}
	if rs.claimWorker() {
		go s.work(rs)
	}
}

// claimWorker counts one more running worker unless the cap is reached.
func (rs *routeShadow) claimWorker() bool {
	for {
		w := rs.workers.Load()
		if w >= rs.maxWorkers {
			return false
		}
		if rs.workers.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// work is one worker of rs: it runs queued copies until none came for
// workerIdle, or the Shadow closed with nothing queued.
func (s *Shadow) work(rs *routeShadow) {
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	// Workers come and go with the load; their batch buffers (requests
	// and answers whose header and body buffers have grown to size) stay.
	b := s.batches.Get().(*batch)
	defer s.batches.Put(b)
	ts := make([]*Ticket, 0, maxBatch)
	for {
		var t *Ticket
		select {
		case t = <-rs.queue:
		default:
		}
		if t == nil {
			rs.idle.Add(1)
			timer.Reset(workerIdle)
			select {
			case t = <-rs.queue:
				rs.idle.Add(-1)
			case <-timer.C:
			case <-s.done:
			}
		}
		if t == nil {
			rs.idle.Add(-1)
			rs.workers.Add(-1)
			// A copy queued after the queue looked empty, by a Complete
			// that saw this worker idle, would wait for the next one:
			// take it. (The idle count drops before the length is read,
			// and Complete sends before it reads the idle count, so one
			// of the two sees the other.)
			if len(rs.queue) == 0 || !rs.claimWorker() {
				return
			}
			continue
		}
		// Whatever else waits leaves with it, in one batch; when little
		// waits, a short pause lets a batch gather (nobody waits for a
		// shadow answer, and every write saved is saved on both ends).
		limit := int(rs.batch.Load())
		ts = append(ts[:0], t)
		ts = drain(rs.queue, ts, limit)
		if limit > 1 && len(ts) < limit/2 {
			// Counted idle meanwhile: the copies arriving now are this
			// worker's to take, not a reason to start another.
			rs.idle.Add(1)
			timer.Reset(batchGather)
			select {
			case <-timer.C:
			case <-s.done:
			}
			rs.idle.Add(-1)
			ts = drain(rs.queue, ts, limit)
		}
		s.runBatch(b, ts)
		small := len(ts) < limit/4
		clear(ts)
		// Small batches with other workers running: the load needs fewer
		// workers, and each one fewer makes the others' batches larger.
		if small && rs.leaveIfOthers() {
			return
		}
	}
}

// leaveIfOthers counts one worker less unless it is the last one.
func (rs *routeShadow) leaveIfOthers() bool {
	for {
		w := rs.workers.Load()
		if w <= 1 {
			return false
		}
		if rs.workers.CompareAndSwap(w, w-1) {
			return true
		}
	}
}

// targetFor returns the side a request served by served is mirrored to;
// nil when that would be the served side itself.
func (rs *routeShadow) targetFor(served decide.Backend) *side {
	tgt := rs.target
	if tgt == nil {
		tgt = rs.upstreams[1-served]
	}
	if tgt == nil || tgt == rs.upstreams[served] {
		return nil
	}
	return tgt
}

func (s *Shadow) count(rs *routeShadow, r Result) {
	rs.m.results[r].Inc()
	rs.stats.result(r)
}

// drain appends to ts what waits on q, up to limit copies in all.
func drain(q chan *Ticket, ts []*Ticket, limit int) []*Ticket {
	for len(ts) < limit {
		select {
		case t := <-q:
			ts = append(ts, t)
		default:
			return ts
		}
	}
	return ts
}

// release returns t's place in the queue and t itself.
func (s *Shadow) release(t *Ticket) {
	rs := t.rs
	t.req.Reset()
	t.phead.Reset()
	t.rs, t.rid, t.pbody = nil, t.rid[:0], t.pbody[:0]
	if cap(t.pbody) > 64<<10 {
		t.pbody = nil // do not pin large buffers in the pool
	}
	rs.bytes.Add(-t.size)
	t.size = 0
	s.tickets.Put(t)
	s.m.inFlight.Add(-1)
	rs.pending.Add(-1)
}

// Close stops mirroring and waits (at most until ctx is done) for the
// copies queued or in flight to finish, then closes the sample store. Call
// it after the gateway stopped serving.
func (s *Shadow) Close(ctx context.Context) error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil
	}
	var err error
	// Close is rare and waits on exchanges of milliseconds to seconds: a
	// short poll of the counters is simpler than a signal per release.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for _, rs := range s.order {
		for rs.pending.Load() > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				err = fmt.Errorf("shadow: closing: exchanges still in flight: %w", ctx.Err())
				break wait
			}
		}
	}
	close(s.done)
	seen := map[*side]bool{}
	for _, rs := range s.order {
		for _, sd := range append(rs.upstreams[:], rs.target) {
			if sd != nil && !seen[sd] {
				seen[sd] = true
				sd.up.CloseIdle()
			}
		}
	}
	if s.store != nil {
		err = errors.Join(err, s.store.close())
	}
	return err
}

// isWrite reports whether method changes state (RFC 9110 §9.2.1 safe
// methods are not writes).
func isWrite(method []byte) bool {
	switch string(method) {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}
