package proxy

import (
	"testing"
	"time"
)

// BenchmarkConnDeadlines is what connection deadlines cost a proxied
// request, on real loopback TCP connections: fasthttp's server re-arms the
// read deadline twice per keep-alive request (the idle timeout while it
// waits, then the read timeout from the first byte) and the write deadline
// once, and the upstream client arms a write and a read deadline per
// exchange. Each is computed from a fresh clock reading, as fasthttp does.
// The bare proxy of bench/ pays the client's two (its client has timeouts)
// but not the server's three (its server has none). docs/benchmarks.md
// compares these with the gateway's CPU per request.
func BenchmarkConnDeadlines(b *testing.B) {
	// client is the accepted side (the gateway's server end of a client
	// connection), upstream the dialled one (the gateway's client end).
	upstream, client := tcpPair(b)

	set := func(b *testing.B, err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("server's three per request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set(b, client.SetReadDeadline(time.Now().Add(90*time.Second)))  // idle
			set(b, client.SetReadDeadline(time.Now().Add(30*time.Second)))  // read
			set(b, client.SetWriteDeadline(time.Now().Add(60*time.Second))) // write
		}
	})
	b.Run("client's two per exchange", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set(b, upstream.SetWriteDeadline(time.Now().Add(10*time.Second)))
			set(b, upstream.SetReadDeadline(time.Now().Add(10*time.Second)))
		}
	})
}
