package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/gateway/proxy"
	"github.com/valyala/fasthttp"
)

// errNoMapping: one side speaks the legacy's own format and the route has
// no Mapping to bring it to the contract.
var errNoMapping = errors.New("no mapping between the legacy format and the contract for this route")

// errLegacyWrite: the monolith ignores the dry-run marker, so a write
// mirrored to it would happen twice.
var errLegacyWrite = errors.New("writes are never mirrored to a legacy-kind upstream: it does not honour the dry-run marker")

// kindLegacy is the upstream kind that needs a Mapping to be compared.
const kindLegacy = "legacy"

// run mirrors and compares one copy on its own (writes, noise routes, a
// target that cannot take a pipelined batch), then frees its place.
func (s *Shadow) run(t *Ticket) {
	defer s.release(t)
	defer s.recoverCopy(t)
	res, err := s.exchange(t)
	s.finish(t, res, err)
}

// recoverCopy counts a panic in one copy's exchange as an error; deferred.
func (s *Shadow) recoverCopy(t *Ticket) {
	if r := recover(); r != nil {
		s.recovered(t, r)
	}
}

// recovered logs and counts a panic r in t's exchange.
func (s *Shadow) recovered(t *Ticket, r any) {
	s.log.Error("panic in shadow exchange", "request_id", string(t.rid), "route", t.rs.name, "panic", r, "stack", string(debug.Stack()))
	s.count(t.rs, ResultError)
}

// finish counts one copy's result.
func (s *Shadow) finish(t *Ticket, res Result, err error) {
	s.count(t.rs, res)
	if err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "shadow exchange not compared",
			slog.String("request_id", string(t.rid)), slog.String("route", t.rs.name),
			slog.String("result", res.String()), slog.Any("err", err))
	}
}

// Batch sizes. An HTTP/1.1 server answers a connection's pipelined
// requests one after the other, so a batch of n takes about n times the
// target's latency: worth it against a target that answers in
// microseconds, a pile-up against one that takes seconds. Each route's
// batch size adapts (adapt): it starts at one, so that a target's first
// answers show its latency before anything is pipelined to it; it doubles
// after a batch that came back within batchFast (never beyond what a
// quarter of the route's timeout covers at the latency seen), halves after
// one slower than batchSlow, and drops to one after a failed one, so a slow
// target gets one copy per connection in flight as without batching.
const (
	maxBatch   = 32
	firstBatch = 1
	batchFast  = 5 * time.Millisecond
	batchSlow  = 20 * time.Millisecond
)

// adapt sets the route's batch size after n copies took took (failed: the
// exchange failed in transport).
func (rs *routeShadow) adapt(n int, took time.Duration, failed bool) {
	cur := rs.batch.Load()
	next := cur
	switch {
	case failed:
		next = 1
	case took > batchSlow:
		next = max(1, int32(n)/2)
	case took < batchFast && int32(n) >= cur/2:
		next = min(maxBatch, cur*2)
		if per := took / time.Duration(max(n, 1)); per > 0 && rs.cfg.Timeout > 0 {
			next = max(1, min(next, int32(min(int64(maxBatch), int64(rs.cfg.Timeout/(4*per))))))
		}
	}
	if next != cur {
		rs.batch.CompareAndSwap(cur, next)
	}
}

// batch is a worker's scratch space for one pipelined batch.
type batch struct {
	tickets []*Ticket
	reqs    []*fasthttp.Request
	resps   []*fasthttp.Response
	fails   []proxy.Failure
	errs    []error
}

func newBatch() *batch {
	b := &batch{
		reqs:  make([]*fasthttp.Request, maxBatch),
		resps: make([]*fasthttp.Response, maxBatch),
		fails: make([]proxy.Failure, maxBatch),
		errs:  make([]error, maxBatch),
	}
	for i := range maxBatch {
		b.reqs[i], b.resps[i] = new(fasthttp.Request), new(fasthttp.Response)
	}
	return b
}

// runBatch mirrors the copies in ts, which the worker took from the queue
// together: reads to a target that accepts them leave as one pipelined
// batch per target (proxy.ExchangeBatch); the rest run one by one. Every
// copy's place is freed before it returns.
func (s *Shadow) runBatch(b *batch, ts []*Ticket) {
	if len(ts) == 1 {
		s.run(ts[0])
		return
	}
	var tgt *side
	b.tickets = b.tickets[:0]
	for _, t := range ts {
		rs := t.rs
		st := rs.targetFor(t.served)
		if rs.cfg.Noise || (tgt != nil && st != tgt) {
			s.run(t)
			continue
		}
		i := len(b.tickets)
		creq := b.reqs[i]
		if !s.prepareForBatch(t, creq) {
			continue
		}
		if !st.up.Batchable(creq) {
			s.run(t)
			continue
		}
		tgt = st
		b.tickets = append(b.tickets, t)
	}
	n := len(b.tickets)
	if n == 0 {
		return
	}
	start := time.Now()
	for i := range n {
		b.resps[i].Reset()
	}
	rs := b.tickets[0].rs
	s.exchangeBatch(tgt, b.reqs[:n], b.resps[:n], rs.cfg.Timeout, b.fails[:n], b.errs[:n])
	elapsed := time.Since(start)
	failed := false
	for i := range n {
		if f := b.fails[i]; f != proxy.FailNone && f != proxy.FailStatus5xx {
			failed = true
		}
	}
	rs.adapt(n, elapsed, failed)
	took := elapsed.Seconds()
	for i, t := range b.tickets {
		t.rs.m.duration.Observe(took)
		cerr := b.errs[i]
		if b.fails[i] == proxy.FailStatus5xx {
			cerr = nil // a 5xx answer is an answer to compare
		}
		s.compareOne(t, b.resps[i], cerr)
		b.reqs[i].Reset()
		b.resps[i].Reset()
		b.errs[i] = nil
	}
}

// prepareForBatch prepares t's copy in creq; false when the copy is not
// sent (skipped, or its preparation panicked: a Mapping is code of the
// migration's own), in which case t is counted and released.
func (s *Shadow) prepareForBatch(t *Ticket, creq *fasthttp.Request) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.recovered(t, r)
			s.release(t)
			ok = false
		}
	}()
	if res, err := s.prepare(t, creq); err != nil {
		s.finish(t, res, err)
		s.release(t)
		return false
	}
	return true
}

// exchangeBatch runs the batch through the target's client; a panic fails
// every copy of the batch instead of the process (a worker is a goroutine
// of its own: nothing above it would recover).
func (s *Shadow) exchangeBatch(tgt *side, reqs []*fasthttp.Request, resps []*fasthttp.Response, timeout time.Duration, fails []proxy.Failure, errs []error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in a pipelined shadow batch", "target", tgt.name, "panic", r, "stack", string(debug.Stack()))
			for i := range fails {
				fails[i], errs[i] = proxy.FailOther, fmt.Errorf("panic in a pipelined batch: %v", r)
			}
		}
	}()
	tgt.up.ExchangeBatch(reqs, resps, timeout, fails, errs)
}

// compareOne compares one answered copy of a batch and frees its place.
func (s *Shadow) compareOne(t *Ticket, cresp *fasthttp.Response, cerr error) {
	defer s.release(t)
	defer s.recoverCopy(t)
	res, err := s.compareAnswers(t, cresp, cerr, nil, nil, false)
	s.finish(t, res, err)
}

// prepare turns t's request into the copy for the target, in creq. A
// non-nil error says the copy is not sent, with its result.
func (s *Shadow) prepare(t *Ticket, creq *fasthttp.Request) (Result, error) {
	rs := t.rs
	primary := rs.upstreams[t.served]
	tgt := rs.targetFor(t.served)
	t.req.CopyTo(creq)
	if !mapRequest(rs.mapping, primary.kind, tgt.kind, creq) {
		return ResultSkipped, errNoMapping
	}
	creq.Header.SetCanonical(keyShadow, one)
	write := isWrite(creq.Header.Method())
	if write && tgt.kind == kindLegacy {
		return ResultSkipped, errLegacyWrite
	}
	if write && len(creq.Header.PeekCanonical(keyIdempotencyKey)) == 0 {
		creq.Header.SetCanonical(keyIdempotencyKey, append([]byte("ficus-shadow-"), t.rid...))
	}
	return ResultMatch, nil
}

// Header names and values set on copies, in canonical form.
var (
	keyShadow         = []byte(HeaderShadow)
	keyIdempotencyKey = []byte(HeaderIdempotencyKey)
	one               = []byte("1")
)

// exchange mirrors t's request, compares the answers, records the
// comparison and stores a differing sample.
func (s *Shadow) exchange(t *Ticket) (Result, error) {
	rs := t.rs
	primary := rs.upstreams[t.served]
	tgt := rs.targetFor(t.served)

	creq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(creq)
	if res, err := s.prepare(t, creq); err != nil {
		return res, err
	}
	write := isWrite(creq.Header.Method())

	// Noise: the same request to the primary side again, in parallel, so
	// both copies see the same moment. Never for writes: the primary side
	// may not honour the dry-run marker.
	noise := rs.cfg.Noise && !write
	var sresp *fasthttp.Response
	var serr error
	sdone := make(chan struct{})
	if noise {
		sreq := fasthttp.AcquireRequest()
		t.req.CopyTo(sreq)
		sreq.Header.Set(HeaderShadow, "1")
		sresp = fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(sresp)
		go func() {
			defer close(sdone)
			defer fasthttp.ReleaseRequest(sreq)
			serr = primary.do(sreq, sresp, rs.cfg.Timeout)
		}()
	} else {
		close(sdone)
	}

	cresp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(cresp)
	start := time.Now() // wall time, not the injected clock: this is a measurement
	cerr := tgt.do(creq, cresp, rs.cfg.Timeout)
	took := time.Since(start)
	rs.m.duration.Observe(took.Seconds())
	if !write {
		rs.adapt(1, took, cerr != nil)
	}
	<-sdone
	return s.compareAnswers(t, cresp, cerr, sresp, serr, noise)
}

// compareAnswers compares the target's answer (or its failure cerr) with
// the primary's, and the primary's second answer sresp when noise is on;
// it records the comparison and stores a differing sample.
func (s *Shadow) compareAnswers(t *Ticket, cresp *fasthttp.Response, cerr error, sresp *fasthttp.Response, serr error, noise bool) (Result, error) {
	rs := t.rs
	primary := rs.upstreams[t.served]
	tgt := rs.targetFor(t.served)
	switch {
	case errors.Is(cerr, fasthttp.ErrBodyTooLarge):
		return ResultSkipped, cerr
	case cerr != nil:
		return ResultError, fmt.Errorf("shadow target %s: %w", tgt.name, cerr)
	}
	if err := comparable(t.pstatus, cresp.StatusCode()); err != nil {
		return ResultSkipped, err
	}

	s.comparing <- struct{}{}
	compared := false
	doneComparing := func() {
		if !compared {
			compared = true
			<-s.comparing
		}
	}
	defer doneComparing()

	// Only a legacy side facing a contract side is translated; two sides
	// of the same kind already speak the same format.
	pkind, tkind := primary.kind, tgt.kind
	if (pkind == kindLegacy) == (tkind == kindLegacy) {
		pkind, tkind = "", ""
		// Byte-identical answers of the same format have no difference
		// whatever the rules: count the match without decoding either.
		if !noise && identical(rs, t, cresp) {
			rs.stats.record(nil, nil, false, s.m.fieldDiffs, rs.name)
			return ResultMatch, nil
		}
	}
	pa, err := normalise(rs, pkind, t.pstatus, headersOf(rs, &t.phead), string(t.phead.ContentEncoding()), t.pbody)
	if err != nil {
		return resultOf(err), fmt.Errorf("primary answer: %w", err)
	}
	ca, err := normalise(rs, tkind, cresp.StatusCode(), responseHeaders(rs, cresp), string(cresp.Header.ContentEncoding()), cresp.Body())
	if err != nil {
		return resultOf(err), fmt.Errorf("shadow answer: %w", err)
	}
	now := s.now()
	diffs := rs.cmp.compare(now, pa, ca)
	var noiseFields []string
	noiseOn := noise && serr == nil && comparable(t.pstatus, sresp.StatusCode()) == nil
	if noiseOn {
		sa, err := normalise(rs, pkind, sresp.StatusCode(), responseHeaders(rs, sresp), string(sresp.Header.ContentEncoding()), sresp.Body())
		if err != nil {
			noiseOn = false
		} else {
			noiseFields = fields(rs.cmp.compare(now, pa, sa))
		}
	}
	rs.stats.record(fields(diffs), noiseFields, noiseOn, s.m.fieldDiffs, rs.name)

	// What differed between the primary and itself in this very exchange
	// is noise here, whatever the long-run rates say.
	kept := diffs[:0:0]
	for _, d := range diffs {
		if !slices.Contains(noiseFields, d.Field) {
			kept = append(kept, d)
		}
	}
	if len(kept) == 0 {
		return ResultMatch, nil
	}
	fs := fields(kept)
	rid := string(t.rid)
	// Per exchange, so at debug: the report and the metrics carry the rates.
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "shadow answer differs",
		slog.String("request_id", rid), slog.String("route", rs.name), slog.String("target", tgt.name),
		slog.Any("fields", fs))
	smp := Sample{
		At: now.UTC(), RequestID: rid,
		Method: string(t.req.Header.Method()), Path: string(t.req.URI().Path()), Query: string(t.req.URI().QueryString()),
		Headers:       redactHeaders(&t.req.Header),
		PrimaryStatus: pa.status, ShadowStatus: ca.status,
		PrimaryBody: clip(pa.body), ShadowBody: clip(ca.body),
		Differences: kept,
	}
	doneComparing() // the store write is I/O: let the next comparison run
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.store.add(ctx, rs.name, rs.cfg.Samples, smp); err != nil {
		s.log.Warn("could not store a shadow sample", "request_id", rid, "route", rs.name, "err", err)
	}
	return ResultDiff, nil
}

// mapRequest rewrites req for the target when the two sides speak
// different formats; false when that needs a Mapping the route lacks or the
// request has no counterpart.
func mapRequest(m Mapping, primaryKind, targetKind string, req *fasthttp.Request) bool {
	pl, tl := primaryKind == kindLegacy, targetKind == kindLegacy
	switch {
	case pl == tl:
		return true
	case m == nil:
		return false
	case pl:
		return m.ToNew(req)
	default:
		return m.ToLegacy(req)
	}
}

// normalise returns an answer in the new contract's terms: the body
// decompressed and, from a legacy-kind side, translated by the Mapping.
func normalise(rs *routeShadow, kind string, status int, headers map[string]string, encoding string, body []byte) (answer, error) {
	a := answer{status: status, headers: headers, body: body}
	if encoding != "" && encoding != "identity" {
		r := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(r)
		r.Header.SetContentEncoding(encoding)
		r.SetBodyRaw(body)
		b, err := r.BodyUncompressed()
		if err != nil {
			return a, fmt.Errorf("%w: decoding %s body: %w", errUnreadable, encoding, err)
		}
		a.body = slices.Clone(b)
	}
	if kind != kindLegacy {
		return a, nil
	}
	if rs.mapping == nil {
		return a, errNoMapping
	}
	st, b, err := rs.mapping.Normalise(status, a.body)
	if err != nil {
		return a, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	h := make(map[string]string, len(headers))
	for k, v := range headers {
		h[k] = v
	}
	h["Content-Type"] = "application/json"
	return answer{status: st, headers: h, body: b}, nil
}

// errUnreadable: an answer could not be brought to the contract's terms.
var errUnreadable = errors.New("unreadable answer")

func resultOf(err error) Result {
	if errors.Is(err, errNoMapping) {
		return ResultSkipped
	}
	return ResultError
}

// identical reports whether the target's answer has the primary's status,
// compared headers, Content-Type, Content-Encoding and body bytes.
func identical(rs *routeShadow, t *Ticket, cresp *fasthttp.Response) bool {
	h := &cresp.Header
	if t.pstatus != cresp.StatusCode() || !bytes.Equal(t.pbody, cresp.Body()) ||
		!bytes.Equal(t.phead.ContentType(), h.ContentType()) || !bytes.Equal(t.phead.ContentEncoding(), h.ContentEncoding()) {
		return false
	}
	for _, k := range rs.cmp.headers {
		if !bytes.Equal(t.phead.Peek(k), h.Peek(k)) {
			return false
		}
	}
	return true
}

// responseHeaders copies the compared headers of resp.
func responseHeaders(rs *routeShadow, resp *fasthttp.Response) map[string]string {
	return headersOf(rs, &resp.Header)
}

// headersOf copies the compared headers (and Content-Type) of h.
func headersOf(rs *routeShadow, h *fasthttp.ResponseHeader) map[string]string {
	out := make(map[string]string, len(rs.cmp.headers)+1)
	out["Content-Type"] = string(h.ContentType())
	for _, k := range rs.cmp.headers {
		out[k] = string(h.Peek(k))
	}
	return out
}

// fields returns the distinct field patterns of ds, in order.
func fields(ds []Difference) []string {
	var out []string
	for _, d := range ds {
		if !slices.Contains(out, d.Field) {
			out = append(out, d.Field)
		}
	}
	return out
}

// redactHeaders copies a request's headers for storage, secrets replaced.
func redactHeaders(h *fasthttp.RequestHeader) map[string]string {
	out := map[string]string{}
	for k, v := range h.All() {
		name := string(k)
		val := string(v)
		if secretHeader.MatchString(name) {
			val = redacted
		}
		if prev, ok := out[name]; ok {
			val = prev + ", " + val
		}
		out[name] = val
	}
	return out
}

func clip(b []byte) string {
	if len(b) <= maxStoredBody {
		return string(b)
	}
	return strings.ToValidUTF8(string(b[:maxStoredBody]), "") + "…"
}
