package proxy

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzScreenRequestHeaders: the screen never panics; on any head fasthttp
// accepts, a request carrying both framing headers is always flagged, and
// after StripForwarding no underscore spelling of a forwarding field, nor
// (untrusted) any usual one, is left.
func FuzzScreenRequestHeaders(f *testing.F) {
	for _, s := range []string{
		"Host: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n",
		"Host: a\r\nX Foo: 1\r\n",
		"Host: a\r\nX_Forwarded_For: 1.2.3.4\r\nX-Real-IP: 5.6.7.8\r\n",
		"Host: a\r\nX-A: 1\r\n folded\r\n",
		"Host: a\r\nx-original-url: /admin\r\nFORWARDED: for=x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, block []byte) {
		_ = ScreenRequestHeaders(block) // any bytes: must not panic
		var h fasthttp.RequestHeader
		raw := "GET / HTTP/1.1\r\n" + string(block) + "\r\n"
		if !bytes.HasSuffix(block, []byte("\r\n")) {
			raw = "GET / HTTP/1.1\r\n" + string(block) + "\r\n\r\n"
		}
		if h.Read(bufio.NewReader(strings.NewReader(raw))) != nil {
			return
		}
		s := ScreenRequestHeaders(h.RawHeaders())
		if h.ContentLength() == -1 && bytes.Contains(bytes.ToLower(h.RawHeaders()), []byte("content-length:")) && s&ScreenAmbiguousFraming == 0 {
			t.Fatalf("chunked with a Content-Length line not flagged: %q", h.RawHeaders())
		}
		StripForwarding(&h, false)
		for k := range h.All() {
			if _, ok := forwardingName(k); ok {
				t.Fatalf("%q survived StripForwarding", k)
			}
		}
	})
}
