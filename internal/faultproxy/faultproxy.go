// Package faultproxy is a TCP proxy for tests that puts network faults
// between a client and a server on loopback: added latency, a black hole,
// connection resets (before or after the request reached the server), a
// slow close, a bandwidth cap, and refused connections. It plays the role
// toxiproxy plays in a lab, in-process, so that a test can switch a fault on
// at the exact moment it needs and know which requests it hit.
//
// A fault applies to the bytes that move after it is set, on connections
// old and new, so a test can break a pooled keep-alive connection mid-way.
// Rate makes a fault hit only a share of the connections (decided once per
// connection, with the proxy's seeded random source, so a run repeats).
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what a fault does.
type Kind int

// The faults.
const (
	// None forwards bytes unchanged.
	None Kind = iota
	// Latency delays every chunk, both ways, by Fault.Latency.
	Latency
	// BlackHole accepts bytes and never forwards or answers them: the
	// client waits until its own timeout.
	BlackHole
	// Reset closes the client's connection with a TCP RST as soon as it
	// sends anything: the request never reaches the server.
	Reset
	// ResetAfterSend forwards the request to the server, then resets the
	// client's connection when the answer comes: the server acted, the
	// client never learns how (the lost answer of a payment system).
	ResetAfterSend
	// SlowClose forwards everything, then holds the connection open for
	// Fault.Latency after the server closed it before closing it too.
	SlowClose
	// Bandwidth forwards at most Fault.BytesPerSecond each way.
	Bandwidth
	// Refuse stops listening: new connections are refused, existing ones
	// are closed.
	Refuse
)

var kindNames = [...]string{"none", "latency", "black-hole", "reset", "reset-after-send", "slow-close", "bandwidth", "refuse"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Fault is one fault setting.
type Fault struct {
	Kind Kind
	// Latency is the delay of Latency and the hold of SlowClose.
	Latency time.Duration
	// BytesPerSecond is Bandwidth's cap; 0 means 1 KiB/s.
	BytesPerSecond int
	// Rate is the share of connections the fault hits, decided once per
	// connection; 0 or >= 1 means every connection.
	Rate float64
}

// Proxy forwards TCP connections from Addr to a target, with a fault.
type Proxy struct {
	target string
	addr   string

	mu     sync.Mutex
	ln     net.Listener // nil while refusing
	conns  map[*link]struct{}
	rnd    *rand.Rand
	closed bool

	fault atomic.Pointer[Fault]
	gen   atomic.Uint64 // bumped on every Set; links re-decide their fault

	hits atomic.Int64
	wg   sync.WaitGroup
}

// New starts a proxy on 127.0.0.1 (a free port) that forwards to target
// (host:port), with no fault. seed makes Rate decisions repeatable.
func New(target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listening: %w", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[*link]struct{}{},
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	p.fault.Store(&Fault{})
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the proxy's host:port; URL is http://Addr.
func (p *Proxy) Addr() string { return p.addr }

// URL is the proxy's address as an http:// base URL.
func (p *Proxy) URL() string { return "http://" + p.addr }

// Hits counts the connections a fault has hit so far.
func (p *Proxy) Hits() int64 { return p.hits.Load() }

// SetTarget points new connections at another host:port (a restarted
// server on a new port); existing connections keep theirs.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Set switches the fault. Refuse closes the listener and every open
// connection; any other kind after Refuse listens again on the same address.
func (p *Proxy) Set(f Fault) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: closed")
	}
	p.fault.Store(&f)
	p.gen.Add(1)
	if f.Kind == Refuse {
		if p.ln != nil {
			_ = p.ln.Close()
			p.ln = nil
		}
		for l := range p.conns {
			l.close()
		}
		return nil
	}
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("faultproxy: listening again on %s: %w", p.addr, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	return nil
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for l := range p.conns {
		l.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		l := &link{p: p, client: c, draw: p.rnd.Float64()}
		p.conns[l] = struct{}{}
		target := p.target
		p.mu.Unlock()
		p.wg.Add(1)
		go l.run(target)
	}
}

// link is one proxied connection.
type link struct {
	p      *Proxy
	client net.Conn
	server net.Conn
	draw   float64 // this connection's draw against Fault.Rate
	hit    atomic.Bool
	once   sync.Once
}

// current returns the fault that applies to this connection now.
func (l *link) current() Fault {
	f := *l.p.fault.Load()
	if f.Kind == None || (f.Rate > 0 && f.Rate < 1 && l.draw >= f.Rate) {
		return Fault{}
	}
	if l.hit.CompareAndSwap(false, true) {
		l.p.hits.Add(1)
	}
	return f
}

func (l *link) close() {
	l.once.Do(func() {
		_ = l.client.Close()
		if l.server != nil {
			_ = l.server.Close()
		}
	})
}

// reset closes the client connection with an RST instead of a FIN.
func (l *link) reset() {
	if tc, ok := l.client.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	l.close()
}

func (l *link) run(target string) {
	defer l.p.wg.Done()
	defer func() {
		l.p.mu.Lock()
		delete(l.p.conns, l)
		l.p.mu.Unlock()
	}()
	s, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		l.reset() // the server is down: the client sees the connection drop
		return
	}
	l.p.mu.Lock()
	l.server = s
	l.p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { l.pipe(s, l.client, true); done <- struct{}{} }()
	go func() { l.pipe(l.client, s, false); done <- struct{}{} }()
	<-done
	if f := l.current(); f.Kind == SlowClose {
		time.Sleep(f.Latency) // the fault itself: hold the half-dead connection
	}
	l.close()
	<-done
}

// pipe copies src to dst chunk by chunk, applying the fault in force when
// each chunk arrives. upstream is true for client -> server.
func (l *link) pipe(dst, src net.Conn, upstream bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.forward(dst, buf[:n], upstream) {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// forward writes one chunk under the current fault; false ends the pipe.
func (l *link) forward(dst net.Conn, b []byte, upstream bool) bool {
	f := l.current()
	switch f.Kind {
	case BlackHole:
		return true // swallowed
	case Reset:
		l.reset()
		return false
	case ResetAfterSend:
		if !upstream {
			l.reset()
			return false
		}
	case Latency:
		time.Sleep(f.Latency) // the fault itself: delay this chunk
	case Bandwidth:
		bps := f.BytesPerSecond
		if bps <= 0 {
			bps = 1 << 10
		}
		for len(b) > 0 {
			n := min(len(b), max(bps/10, 1))
			if _, err := dst.Write(b[:n]); err != nil {
				return false
			}
			b = b[n:]
			time.Sleep(time.Duration(n) * time.Second / time.Duration(bps)) // pacing, the fault itself
		}
		return true
	case Refuse:
		l.close()
		return false
	}
	_, err := dst.Write(b)
	return err == nil
}
