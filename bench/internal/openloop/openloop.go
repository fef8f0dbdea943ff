// Package openloop sends requests at a fixed rate, whatever the target's
// answers do (an open loop), and measures each request's latency from the
// moment the sender released it, not from when a connection was free to
// send it. A closed loop such as wrk waits for an answer before the next
// request, so a slow moment lowers the request rate instead of showing as
// latency (coordinated omission); here a slow moment shows as the latency
// of every request released during it.
//
// The sender wakes every tick (1ms) and releases the requests due by then:
// sleeps shorter than about a millisecond are not kept on a busy machine,
// and spinning would take a CPU from the targets. Latency counts from the
// release, so the tick's rounding (the same for every target) is not
// charged to the target.
package openloop

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Options of Run.
type Options struct {
	// Rate is requests per second. Required.
	Rate float64
	// Duration of the run. Required.
	Duration time.Duration
	// Workers send requests in parallel (each one exchange at a time); a
	// request due while all are busy waits for one, and the wait counts as
	// latency. Zero: 64.
	Workers int
	// Tick is how often the sender wakes to release the requests now due
	// (timers are not precise to a request's interval at thousands per
	// second). Zero: 1ms.
	Tick time.Duration
	// Do sends request number i and reports its error (nil: a 2xx/3xx
	// answer). Called from the workers. Required.
	Do func(i int) error
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Sleep waits. Nil: time.Sleep.
	Sleep func(time.Duration)
}

// Result summarises a run.
type Result struct {
	// Sent is how many requests were due and sent.
	Sent int
	// Errors is how many of them failed.
	Errors int
	// Latencies are the successful requests' latencies, from the moment
	// each was released to the workers, sorted.
	Latencies []time.Duration
	// Elapsed is the time from the first due moment to the last answer.
	Elapsed time.Duration
}

// Percentile returns the p-th percentile (0 < p <= 100) of the sorted
// latencies, by the nearest-rank method; 0 without latencies.
func (r Result) Percentile(p float64) time.Duration {
	return Percentile(r.Latencies, p)
}

// Percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value with at least p% of the values at or below
// it. 0 when sorted is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The small epsilon keeps p/100*n = 999.0000000001 at rank 999.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Line formats r as the machine-readable line bench/run.sh parses.
func (r Result) Line(rate float64) string {
	return fmt.Sprintf("BENCH_RATE_RESULT rate=%.0f sent=%d errors=%d achieved=%.0f p50_us=%d p99_us=%d p999_us=%d max_us=%d",
		rate, r.Sent, r.Errors, r.Achieved(), r.Percentile(50).Microseconds(), r.Percentile(99).Microseconds(),
		r.Percentile(99.9).Microseconds(), r.Percentile(100).Microseconds())
}

// Achieved is the rate at which requests were answered.
func (r Result) Achieved() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Due returns how many requests are due by elapsed at rate: request i is
// due at i/rate seconds after the start.
func Due(rate float64, elapsed time.Duration) int {
	if elapsed < 0 {
		return 0
	}
	return int(math.Floor(elapsed.Seconds()*rate)) + 1
}

// Run sends requests at opts.Rate for opts.Duration and returns what they
// took.
func Run(opts Options) (Result, error) {
	if opts.Rate <= 0 || opts.Duration <= 0 || opts.Do == nil {
		return Result{}, fmt.Errorf("openloop: rate %v, duration %v and Do are required", opts.Rate, opts.Duration)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 64
	}
	tick := opts.Tick
	if tick <= 0 {
		tick = time.Millisecond
	}
	now, sleep := opts.Now, opts.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = time.Sleep
	}
	total := int(opts.Rate * opts.Duration.Seconds())

	type job struct {
		i        int
		released time.Time
	}
	jobs := make(chan job, total)
	lat := make([][]time.Duration, workers)
	errs := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				err := opts.Do(j.i)
				if err != nil {
					errs[w]++
					continue
				}
				lat[w] = append(lat[w], now().Sub(j.released))
			}
		}()
	}
	start := now()
	sent := 0
	for sent < total {
		t := now()
		due := min(Due(opts.Rate, t.Sub(start)), total)
		for ; sent < due; sent++ {
			jobs <- job{i: sent, released: t}
		}
		if sent < total {
			sleep(tick)
		}
	}
	close(jobs)
	wg.Wait()
	r := Result{Sent: sent, Elapsed: now().Sub(start)}
	for w := range workers {
		r.Errors += errs[w]
		r.Latencies = append(r.Latencies, lat[w]...)
	}
	slices.Sort(r.Latencies)
	return r, nil
}
