// Command upstream is the load benchmark's backend: it answers every request
// with the same ~1 KiB JSON document, so that what the benchmark measures is
// the proxy in front of it, not the backend's work.
//
// It listens on loopback only and, with -addr-file, writes the address it got
// (port 0 picks a free one) so the benchmark script never guesses ports.
// -sleep delays every answer: it stands in for a slow shadow target when
// mirroring is measured, where the question is whether the slow side leaks
// into the primary's throughput or latency.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ficus-gw/ficus/bench/internal/loopback"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on; port 0 picks a free port")
	addrFile := fs.String("addr-file", "", "write the bound host:port to this file once listening (empty: do not write)")
	size := fs.Int("size", 1024, "approximate size of the JSON body in bytes")
	sleep := fs.Duration("sleep", 0, "delay before every answer, e.g. 5s for the slow mirror target (0: answer at once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 64 {
		return fmt.Errorf("-size %d: must be at least 64", *size)
	}
	if *sleep < 0 {
		return fmt.Errorf("-sleep %s: must not be negative", *sleep)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ln, err := loopback.Listen(*listen, *addrFile)
	if err != nil {
		return err
	}
	body := productJSON(*size)
	srv := newServer(newHandler(body, *sleep, time.Sleep))
	log.Info("upstream listening", "addr", ln.Addr().String(), "body_bytes", len(body), "sleep", *sleep)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	// The benchmark is over: no need to wait for sleeping mirror requests.
	_ = ln.Close()
	return nil
}

// newServer wraps h with settings sized for a load test: no per-request
// logging, no header normalisation work the proxies do not also pay.
func newServer(h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       h,
		Name:                          "bench-upstream",
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		IdleTimeout:                   90 * time.Second,
		DisableHeaderNamesNormalizing: true,
		NoDefaultDate:                 true,
	}
}

// newHandler answers every method and path with body. wait is called with a
// positive delay before answering; it is time.Sleep outside tests.
func newHandler(body []byte, delay time.Duration, wait func(time.Duration)) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if delay > 0 {
			wait(delay)
		}
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		if ctx.IsHead() {
			ctx.Response.Header.SetContentLength(len(body))
			ctx.Response.SkipBody = true
			return
		}
		ctx.SetBody(body)
	}
}

// productJSON builds a catalogue-like JSON document of about size bytes: a
// realistic shape (strings, numbers, a nested array) rather than one long
// string, padded by the description.
func productJSON(size int) []byte {
	const head = `{"sku":"BENCH-0001","name":"Benchmark product","price":{"amount":"19.99","currency":"EUR"},` +
		`"stock":42,"tags":["bench","loopback","json"],"description":"`
	const tail = `"}` + "\n"
	pad := max(0, size-len(head)-len(tail))
	return []byte(head + strings.Repeat("x", pad) + tail)
}
