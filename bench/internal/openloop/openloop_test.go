package openloop

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	t.Parallel()
	var xs []time.Duration
	for i := 1; i <= 1000; i++ {
		xs = append(xs, time.Duration(i)*time.Microsecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Microsecond}, {99, 990 * time.Microsecond}, {99.9, 999 * time.Microsecond}, {100, time.Millisecond}, {0.01, time.Microsecond}} {
		if got := Percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 99) != 0 {
		t.Error("percentile of nothing must be 0")
	}
	if got := Percentile([]time.Duration{7}, 99.9); got != 7 {
		t.Errorf("p99.9 of one value = %v", got)
	}
}

// fakeClock moves only when the sender sleeps, so the schedule is exact.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRunSendsAtTheRateAndCountsWaitingAsLatency(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var mu sync.Mutex
	calls := map[int]int{}
	r, err := Run(Options{
		Rate: 1000, Duration: 2 * time.Second, Workers: 4, Tick: time.Millisecond,
		Now: clk.now, Sleep: clk.sleep,
		Do: func(i int) error {
			mu.Lock()
			calls[i]++
			mu.Unlock()
			if i%100 == 0 {
				return errors.New("boom")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 2000 || len(calls) != 2000 {
		t.Fatalf("sent %d, distinct requests %d; want 2000 at 1000/s for 2s", r.Sent, len(calls))
	}
	for i, n := range calls {
		if n != 1 {
			t.Fatalf("request %d sent %d times", i, n)
		}
	}
	if r.Errors != 20 || len(r.Latencies) != 1980 {
		t.Fatalf("errors %d, latencies %d; want 20 failed and 1980 measured", r.Errors, len(r.Latencies))
	}
	// Latencies run from each request's due moment: never negative, and
	// sorted for the percentiles.
	if r.Latencies[0] < 0 || r.Percentile(100) > 3*time.Second || !slices.IsSorted(r.Latencies) {
		t.Fatalf("latencies from %v to %v; want sorted, from the due moments", r.Latencies[0], r.Percentile(100))
	}
	line := r.Line(1000)
	for _, want := range []string{"BENCH_RATE_RESULT rate=1000 sent=2000 errors=20 ", " p999_us="} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

func TestDue(t *testing.T) {
	t.Parallel()
	if Due(1000, 0) != 1 || Due(1000, 999*time.Microsecond) != 1 || Due(1000, time.Millisecond) != 2 || Due(1000, -1) != 0 {
		t.Fatal("request i is due at i/rate: one at 0, the second at 1ms")
	}
}

func TestRunRejectsMissingSettings(t *testing.T) {
	t.Parallel()
	if _, err := Run(Options{Rate: 0, Duration: time.Second, Do: func(int) error { return nil }}); err == nil {
		t.Fatal("rate 0 accepted")
	}
}

// A stalled answer delays the requests due behind it: with one worker,
// every request due during the stall is answered after it, and its latency
// counts from when it was due. (The sleep stands for a slow target.)
func TestAStallShowsAsLatencyOfTheRequestsBehindIt(t *testing.T) {
	t.Parallel()
	r, err := Run(Options{Rate: 1000, Duration: 100 * time.Millisecond, Workers: 1,
		Do: func(i int) error {
			if i == 0 {
				time.Sleep(30 * time.Millisecond)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 100 {
		t.Fatalf("sent %d, want 100: the sender does not wait for answers", r.Sent)
	}
	// About 30 requests were due during the stall; the 10 % slowest must
	// include some that waited well over 10ms.
	if p := r.Percentile(90); p < 10*time.Millisecond {
		t.Fatalf("p90 %v: the requests queued behind a 30ms stall must show it", p)
	}
}
