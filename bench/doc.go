// Package bench is the loopback load benchmark behind `make bench`: run.sh
// measures the upstream directly, a bare Fiber v2 proxy (./bareproxy), nginx
// and the Ficus gateway with the same wrk load, and writes requests/s,
// latency percentiles, CPU per request, peak RSS and their ratios into
// docs/benchmarks.md. ./upstream is the backend every target proxies to.
//
// The package itself holds only tests of the script's generated
// configurations and report, so that a change to the gateway's config schema
// or to the script shows up in `go test` rather than halfway through a run.
package bench
