package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

// Batched exchanges: many small reads to one upstream, sent pipelined (RFC
// 9112 §9.3.2) on one connection by the calling goroutine. The requests
// leave in one write and their answers are read back in order, so a batch
// of n costs the gateway and the upstream a few system calls and one
// goroutine's turn instead of two calls and several wake-ups per request.
// It exists for shadow copies, which nobody waits for and which arrive in
// bulk; the primary path keeps one exchange per connection turn.

// ErrNotBatchable is returned by ExchangeBatch for a request that may not
// be pipelined: not GET or HEAD, with a body, or to an https upstream.
var ErrNotBatchable = errors.New("request cannot be sent in a pipelined batch")

// batchConn is one pipelining connection and its buffers.
type batchConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// batchPool holds the upstream's idle pipelining connections. Connections
// in use are counted, so that at most max exist at once.
type batchPool struct {
	dial func() (net.Conn, error)
	max  int
	mu   sync.Mutex
	idle []*batchConn
	open int
}

var errBatchPoolFull = fmt.Errorf("batch connections: %w", fasthttp.ErrNoFreeConns)

func (p *batchPool) get() (*batchConn, bool, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		bc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return bc, true, nil
	}
	if p.open >= p.max {
		p.mu.Unlock()
		return nil, false, errBatchPoolFull
	}
	p.open++
	p.mu.Unlock()
	c, err := p.dial()
	if err != nil {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
		return nil, false, err
	}
	return &batchConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, false, nil
}

func (p *batchPool) put(bc *batchConn) {
	p.mu.Lock()
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
}

func (p *batchPool) discard(bc *batchConn) {
	_ = bc.c.Close()
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
}

func (p *batchPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.mu.Unlock()
	for _, bc := range idle {
		_ = bc.c.Close()
	}
}

// Batchable reports whether req may go in a batch (see ErrNotBatchable).
func (u *Upstream) Batchable(req *fasthttp.Request) bool {
	if u.https || len(req.Body()) > 0 || req.IsBodyStream() {
		return false
	}
	m := req.Header.Method()
	return string(m) == fasthttp.MethodGet || string(m) == fasthttp.MethodHead
}

// ExchangeBatch sends reqs pipelined on one connection and reads the
// answers into resps (same length), all within timeout, through the
// breaker: when it refuses, nothing is sent; otherwise each exchange's
// outcome is told to the breaker as Exchange would (a transport error or a
// 5xx is a failure). In the breaker's half-open state only the first
// request is sent; the others fail with FailBreakerOpen. fails[i] and the
// returned errs[i] describe request i. Every request must be Batchable.
//
// A reused connection that turns out closed before any answer arrived is
// replaced once and the batch sent again: the requests are reads. Once an
// answer has arrived, a broken connection fails the rest of the batch
// (FailReset).
func (u *Upstream) ExchangeBatch(reqs []*fasthttp.Request, resps []*fasthttp.Response, timeout time.Duration, fails []Failure, errs []error) {
	n := len(reqs)
	for _, req := range reqs {
		if !u.Batchable(req) {
			for j := range n {
				fails[j], errs[j] = FailOther, ErrNotBatchable
			}
			return
		}
	}
	send := n
	if u.breaker != nil {
		switch u.breaker.State() {
		case gobreaker.StateOpen:
			for i := range n {
				fails[i], errs[i] = FailBreakerOpen, gobreaker.ErrOpenState
			}
			return
		case gobreaker.StateHalfOpen:
			send = 1
			for i := 1; i < n; i++ {
				fails[i], errs[i] = FailBreakerOpen, gobreaker.ErrTooManyRequests
			}
		}
	}
	if timeout <= 0 {
		timeout = u.timeout
	}
	deadline := time.Now().Add(timeout)
	got := u.batch(reqs[:send], resps[:send], deadline, fails, errs)
	if got == 0 && fails[0] == FailReset && errs[0] != nil && errors.Is(errs[0], errReusedConnBroke) {
		// The other idle connections are most likely dead too (a
		// restart): drop them so that the one retry dials afresh.
		u.bp.closeIdle()
		for i := range send {
			resps[i].Reset()
		}
		u.staleRetries.Add(1)
		u.batch(reqs[:send], resps[:send], deadline, fails, errs)
	}
	if u.breaker == nil {
		return
	}
	for i := range send {
		err := errs[i]
		_, _ = u.breaker.Execute(func() (struct{}, error) { return struct{}{}, err })
	}
}

// errReusedConnBroke: a pooled connection broke before its first answer
// of this batch (the upstream closed it while idle).
var errReusedConnBroke = errors.New("pooled pipelining connection broke before any answer")

// batch runs one pipelined exchange and returns how many answers were
// read; it fills fails and errs for every request.
func (u *Upstream) batch(reqs []*fasthttp.Request, resps []*fasthttp.Response, deadline time.Time, fails []Failure, errs []error) int {
	bc, reused, err := u.bp.get()
	if err != nil {
		f := Classify(err)
		for i := range reqs {
			fails[i], errs[i] = f, err
		}
		return 0
	}
	fail := func(from int, err error) {
		f := Classify(err)
		for i := from; i < len(reqs); i++ {
			fails[i], errs[i] = f, err
		}
		u.bp.discard(bc)
	}
	if err := bc.c.SetDeadline(deadline); err != nil {
		fail(0, err)
		return 0
	}
	for _, req := range reqs {
		uri := req.URI()
		uri.DisablePathNormalizing = true
		uri.SetScheme("http")
		uri.SetHost(u.host)
		req.UseHostHeader = false
		req.Header.SetHost(u.host)
		if len(req.Header.UserAgent()) == 0 {
			req.Header.SetUserAgent(u.hc.Name)
		}
		if err := req.Write(bc.bw); err != nil {
			fail(0, err)
			return 0
		}
	}
	if err := bc.bw.Flush(); err != nil {
		if reused {
			err = errors.Join(errReusedConnBroke, err)
		}
		fail(0, err)
		return 0
	}
	for i, resp := range resps {
		resp.SkipBody = string(reqs[i].Header.Method()) == fasthttp.MethodHead
		if err := resp.ReadLimitBody(bc.br, u.hc.MaxResponseBodySize); err != nil {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				// The stream is out of step now: this one is over its cap,
				// the rest are lost with the connection.
				fails[i], errs[i] = FailOther, err
				fail(i+1, fmt.Errorf("batch abandoned after an answer over the size cap: %w", fasthttp.ErrConnectionClosed))
				return i
			}
			if i == 0 && reused {
				err = errors.Join(errReusedConnBroke, err)
			}
			fail(i, err)
			return i
		}
		if resp.StatusCode() >= 500 {
			fails[i], errs[i] = FailStatus5xx, ErrStatus5xx
		} else {
			fails[i], errs[i] = FailNone, nil
		}
		if resp.ConnectionClose() {
			if i+1 < len(resps) {
				fail(i+1, fmt.Errorf("upstream closed a pipelined connection: %w", fasthttp.ErrConnectionClosed))
				return i + 1
			}
			u.bp.discard(bc)
			return i + 1
		}
	}
	u.bp.put(bc)
	return len(resps)
}
