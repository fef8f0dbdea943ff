// Command loadgen is the benchmark's fixed-rate load: it sends GET requests
// to one URL at -rate per second for -duration, whatever the answers do (an
// open loop, see bench/internal/openloop), each carrying an X-User-Id from a
// pool of -users as bench/wrk.lua does, and prints one BENCH_RATE_RESULT
// line: requests sent, errors, and the p50, p99 and p99.9 latency measured
// from the moment each request was due.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ficus-gw/ficus/bench/internal/openloop"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "", "URL to load (http://127.0.0.1:PORT/path)")
	rate := fs.Float64("rate", 2000, "requests per second")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	workers := fs.Int("workers", 64, "requests in flight at most (connections)")
	users := fs.Int("users", 1000, "distinct X-User-Id values, in turn")
	timeout := fs.Duration("timeout", 2*time.Second, "per-request timeout; a request over it is an error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q: want http://host:port/path", *target)
	}
	hc := &fasthttp.HostClient{Addr: u.Host, MaxConns: *workers, NoDefaultUserAgentHeader: true,
		ReadTimeout: *timeout, WriteTimeout: *timeout, MaxIdemponentCallAttempts: 1}
	reqURI := u.RequestURI()
	do := func(i int) error {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(reqURI)
		req.Header.SetHost(u.Host)
		req.Header.Set("X-User-Id", "bench-user-"+strconv.Itoa(i%*users+1))
		if err := hc.DoTimeout(req, resp, *timeout); err != nil {
			return err
		}
		if s := resp.StatusCode(); s >= 400 {
			return fmt.Errorf("status %d", s)
		}
		return nil
	}
	r, err := openloop.Run(openloop.Options{Rate: *rate, Duration: *duration, Workers: *workers, Do: do})
	if err != nil {
		return err
	}
	fmt.Println(r.Line(*rate))
	return nil
}
