package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	cases := []struct {
		name string
		err  error
		want Failure
	}{
		{"nil", nil, FailNone},
		{"dial refused", &DialError{Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, FailConnect},
		{"fasthttp dial timeout", fasthttp.ErrDialTimeout, FailConnect},
		{"fasthttp timeout", fasthttp.ErrTimeout, FailTimeout},
		{"wrapped timeout", fmt.Errorf("reading: %w", fasthttp.ErrTimeout), FailTimeout},
		{"reset", reset, FailReset},
		{"eof", io.EOF, FailReset},
		{"closed before response", fasthttp.ErrConnectionClosed, FailReset},
		{"breaker open", gobreaker.ErrOpenState, FailBreakerOpen},
		{"half-open full", gobreaker.ErrTooManyRequests, FailBreakerOpen},
		{"5xx", ErrStatus5xx, FailStatus5xx},
		{"no free conns", fasthttp.ErrNoFreeConns, FailOther},
		{"anything else", errors.New("boom"), FailOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tc.err); got != tc.want {
				t.Fatalf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
	if !FailConnect.NotSent() || !FailBreakerOpen.NotSent() || FailTimeout.NotSent() || FailReset.NotSent() || FailStatus5xx.NotSent() {
		t.Fatal("NotSent must hold only for failures before the first byte")
	}
}

func TestDialErrorFromRealClient(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	up, err := NewUpstream("dead", config.Upstream{URL: "http://" + addr, Timeout: time.Second, DialTimeout: time.Second, Breaker: config.Breaker{Disabled: true}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("/x")
	err = up.Do(req, resp, time.Second, true)
	if Classify(err) != FailConnect || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v classified %s", err, Classify(err))
	}
}

func TestStripHopByHop(t *testing.T) {
	t.Parallel()
	// Parsed, not built with Set: Set drops a Connection value that
	// mentions keep-alive, the wire does not.
	var h fasthttp.RequestHeader
	raw := "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-A ,x-b\r\nConnection: X-C\r\n"
	for _, k := range []string{"X-A", "X-B", "X-C", "X-D", "Te", "Upgrade", "Proxy-Authorization", "Keep-Alive", "Expect"} {
		raw += k + ": 1\r\n"
	}
	if err := h.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
		t.Fatal(err)
	}
	StripRequestHopByHop(&h)
	for _, k := range []string{"Connection", "X-A", "X-B", "X-C", "Te", "Upgrade", "Proxy-Authorization", "Keep-Alive", "Expect"} {
		if v := h.Peek(k); len(v) > 0 {
			t.Errorf("%s survived: %q", k, v)
		}
	}
	if string(h.Peek("X-D")) != "1" {
		t.Error("an end-to-end field was removed")
	}
}

func TestSetForwardedIPv6(t *testing.T) {
	t.Parallel()
	var h fasthttp.RequestHeader
	h.Set("X-Forwarded-For", "203.0.113.9")
	SetForwarded(&h, Forwarded{Peer: netip.MustParseAddr("2001:db8::1"), Trusted: true, Proto: "http"}, []byte("shop.example"))
	if got := string(h.Peek("X-Forwarded-For")); got != "203.0.113.9, 2001:db8::1" {
		t.Fatalf("X-Forwarded-For %q", got)
	}
	trust := Trust{netip.MustParsePrefix("10.0.0.0/8")}
	if !trust.Contains(netip.MustParseAddr("::ffff:10.1.2.3")) || trust.Contains(netip.MustParseAddr("11.0.0.1")) {
		t.Fatal("Trust.Contains is wrong for mapped or outside addresses")
	}
}
