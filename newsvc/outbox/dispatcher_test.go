package outbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// hook is a webhook receiver on loopback. decide answers each POST with a
// status; accepted (2xx) envelopes are sent on got in arrival order.
type hook struct {
	srv    *httptest.Server
	got    chan outbox.Envelope
	posts  atomic.Int64
	errors chan string
}

func newHook(t *testing.T, decide func(n int64, e outbox.Envelope) int) *hook {
	t.Helper()
	h := &hook{got: make(chan outbox.Envelope, 1000), errors: make(chan string, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := h.posts.Add(1)
		var e outbox.Envelope
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			h.errors <- "undecodable body: " + err.Error()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get(outbox.HeaderEventID) != e.EventID || r.Header.Get(outbox.HeaderEventType) != e.Type ||
			r.Header.Get(outbox.HeaderRequestID) != e.CorrelationID {
			h.errors <- "bad request headers: " + r.Method + " " + r.Header.Get("Content-Type")
		}
		status := decide(n, e)
		if status >= 200 && status < 300 {
			h.got <- e
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// receive waits for n accepted envelopes and returns their ids.
func (h *hook) receive(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	out := make([]string, 0, n)
	for len(out) < n {
		select {
		case e := <-h.got:
			out = append(out, e.EventID)
		case msg := <-h.errors:
			t.Fatal(msg)
		case <-deadline.C:
			t.Fatalf("received %d of %d events before the deadline: %v", len(out), n, out)
		}
	}
	return out
}

// runDispatcher starts d and returns a stop function that cancels it and
// waits (bounded) for Run to return.
func runDispatcher(t *testing.T, d *outbox.Dispatcher) (done <-chan error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(waitLimit):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return ch, stop
}

// noWait is an injected sleeper that records requested delays and returns
// at once (or with ctx's error when ctx is done).
type noWait struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *noWait) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *noWait) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.delays)
}

func TestDispatcherResumesAfterRestartWithoutLosingEvents(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "svc.db")
	db := openDB(t, path)
	want := appendEvents(t, db, "thing.changed", 10)

	// First run: the subscriber accepts four events; on the fifth the
	// process "crashes" (the dispatcher is stopped mid-delivery).
	ctx1, crash := context.WithCancel(context.Background())
	defer crash()
	first := newHook(t, func(n int64, _ outbox.Envelope) int {
		if n <= 4 {
			return http.StatusOK
		}
		crash()
		return http.StatusServiceUnavailable
	})
	subs := func(h *hook) []outbox.Subscriber {
		return []outbox.Subscriber{{Name: "search-indexer", URL: h.srv.URL}}
	}
	var sl noWait
	d1 := outbox.NewDispatcher(db, subs(first), first.srv.Client(), testLogger(t), outbox.WithSleep(sl.sleep))
	ran := make(chan error, 1)
	go func() { ran <- d1.Run(ctx1) }()
	got1 := first.receive(t, 4)
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("first dispatcher did not stop")
	}
	if !slices.Equal(got1, ids(want[:4])) {
		t.Fatalf("first run delivered %v, want %v", got1, ids(want[:4]))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on the same file: exactly the six missing events arrive, in order.
	db2 := openDB(t, path)
	t.Cleanup(func() { _ = db2.Close() })
	second := newHook(t, func(int64, outbox.Envelope) int { return http.StatusNoContent })
	d2 := outbox.NewDispatcher(db2, subs(second), second.srv.Client(), testLogger(t), outbox.WithSleep(sl.sleep))
	_, stop := runDispatcher(t, d2)
	got2 := second.receive(t, 6)
	if !slices.Equal(got2, ids(want[4:])) {
		t.Fatalf("after restart delivered %v, want %v", got2, ids(want[4:]))
	}
	// A new event committed later is delivered after a Kick.
	more := appendEvents(t, db2, "thing.changed", 1)
	d2.Kick()
	if got := second.receive(t, 1); got[0] != more[0].EventID {
		t.Fatalf("late event: got %s want %s", got[0], more[0].EventID)
	}
	stop()
	if extra := len(second.got); extra != 0 {
		t.Fatalf("%d events delivered twice after the restart", extra)
	}
	if n := second.posts.Load(); n != 7 {
		t.Errorf("second subscriber got %d POSTs, want 7", n)
	}
}

func TestDispatcherRetriesWithBoundedExponentialBackoff(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	want := appendEvents(t, db, "thing.changed", 2)
	const failures = 6
	h := newHook(t, func(n int64, _ outbox.Envelope) int {
		if n <= failures {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	var sl noWait
	initial, maxDelay := 10*time.Millisecond, 50*time.Millisecond
	reg := prometheus.NewRegistry()
	d := outbox.NewDispatcher(db, []outbox.Subscriber{{Name: "s", URL: h.srv.URL}}, h.srv.Client(), testLogger(t),
		outbox.WithSleep(sl.sleep), outbox.WithBackoff(initial, maxDelay), outbox.WithMetrics(reg, "catalog"))
	_, stop := runDispatcher(t, d)
	got := h.receive(t, 2)
	// The hook saw the second POST before the dispatcher read the answer:
	// wait (bounded) for the acknowledgement to be recorded.
	waitFor(t, "second acknowledgement", func() bool {
		return ackedSeq(t, reg) == 2
	})
	stop()
	if !slices.Equal(got, ids(want)) {
		t.Fatalf("delivered %v, want %v in order", got, ids(want))
	}
	if n := h.posts.Load(); n != failures+2 {
		t.Errorf("%d POSTs, want %d failures + 2 successes", n, failures+2)
	}
	delays := sl.recorded()
	if len(delays) != failures {
		t.Fatalf("slept %d times (%v), want once per failure (%d)", len(delays), delays, failures)
	}
	ceiling := initial
	for i, d := range delays {
		if d < ceiling/2 || d > ceiling {
			t.Errorf("delay %d = %v, want within [%v, %v]", i, d, ceiling/2, ceiling)
		}
		ceiling = min(ceiling*2, maxDelay)
	}
	wantMetrics := `
# HELP ficus_outbox_deliveries_total Webhook deliveries of outbox events by subscriber and outcome (ok, error); errors are retried.
# TYPE ficus_outbox_deliveries_total counter
ficus_outbox_deliveries_total{outcome="error",service="catalog",subscriber="s"} 6
ficus_outbox_deliveries_total{outcome="ok",service="catalog",subscriber="s"} 2
# HELP ficus_outbox_acked_seq Seq of the last event a subscriber acknowledged (or skipped by its type filter).
# TYPE ficus_outbox_acked_seq gauge
ficus_outbox_acked_seq{service="catalog",subscriber="s"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantMetrics), outbox.MetricDeliveries, outbox.MetricLastAckedSeq); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, outbox.MetricDeliveryLag); n != 1 {
		t.Errorf("%d lag series, want 1", n)
	}
}

func TestMetricsOfSeveralServicesShareARegistry(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := outbox.NewDispatcher(db, nil, nil, nil, outbox.WithMetrics(reg, "catalog"))
	b := outbox.NewDispatcher(db, nil, nil, nil, outbox.WithMetrics(reg, "order"))
	dup := outbox.NewDispatcher(db, nil, nil, nil, outbox.WithMetrics(reg, "order"))
	if err := dup.Run(ctx); err == nil {
		t.Error("a second registration for the same service was accepted")
	}
	done := make(chan error, 2)
	go func() { done <- a.Run(ctx) }()
	go func() { done <- b.Run(ctx) }()
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
}

func TestDispatcherFiltersTypesAndIsolatesSubscribers(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	stockEvents := appendEvents(t, db, "stock.changed", 3)
	productEvents := appendEvents(t, db, "product.updated", 2)
	all := append(slices.Clone(stockEvents), productEvents...)

	everything := newHook(t, func(int64, outbox.Envelope) int { return http.StatusOK })
	stockOnly := newHook(t, func(int64, outbox.Envelope) int { return http.StatusAccepted })
	retried := make(chan struct{})
	broken := newHook(t, func(n int64, _ outbox.Envelope) int {
		if n == 3 {
			close(retried)
		}
		return http.StatusBadGateway
	})
	// The broken subscriber keeps retrying with real (tiny) backoff delays;
	// the test waits on deliveries, not on time.
	d := outbox.NewDispatcher(db, []outbox.Subscriber{
		{Name: "broken", URL: broken.srv.URL},
		{Name: "all", URL: everything.srv.URL},
		{Name: "stock", URL: stockOnly.srv.URL, Types: []string{"stock.changed"}},
	}, http.DefaultClient, testLogger(t), outbox.WithBackoff(time.Millisecond, 5*time.Millisecond))
	_, stop := runDispatcher(t, d)
	gotAll := everything.receive(t, len(all))
	gotStock := stockOnly.receive(t, len(stockEvents))
	select {
	case <-retried:
	case <-time.After(waitLimit):
		t.Fatalf("failing subscriber was tried %d times, want retries", broken.posts.Load())
	}
	stop()
	if !slices.Equal(gotAll, ids(all)) {
		t.Errorf("unfiltered subscriber got %v, want %v", gotAll, ids(all))
	}
	if !slices.Equal(gotStock, ids(stockEvents)) {
		t.Errorf("stock subscriber got %v, want %v", gotStock, ids(stockEvents))
	}
	if len(everything.got)+len(stockOnly.got) != 0 {
		t.Error("a subscriber received extra events")
	}
}

func TestDispatcherRejectsBadSubscribers(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	cases := map[string][]outbox.Subscriber{
		"empty name":     {{Name: "", URL: "http://127.0.0.1:1/"}},
		"duplicate name": {{Name: "a", URL: "http://127.0.0.1:1/"}, {Name: "a", URL: "http://127.0.0.1:2/"}},
		"relative URL":   {{Name: "a", URL: "/hook"}},
		"other scheme":   {{Name: "a", URL: "ftp://example.com/x"}},
	}
	for name, subs := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := outbox.NewDispatcher(db, subs, nil, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := d.Run(ctx); err == nil {
				t.Fatal("Run accepted a bad subscriber list")
			}
		})
	}
}

func TestDispatcherRunsOnlyOnce(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	h := newHook(t, func(int64, outbox.Envelope) int { return http.StatusOK })
	d := outbox.NewDispatcher(db, []outbox.Subscriber{{Name: "s", URL: h.srv.URL}}, nil, nil)
	d.Kick() // before Run: must not block
	d.Kick()
	_, stop := runDispatcher(t, d)
	want := appendEvents(t, db, "x.y", 1)
	d.Kick()
	if got := h.receive(t, 1); got[0] != want[0].EventID {
		t.Fatalf("got %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Run(ctx); err == nil {
		t.Error("second concurrent Run was accepted")
	}
	stop()
}

// waitFor polls cond until it holds or waitLimit passes: a bounded loop for
// state that has no event to wait on (a metric), never a fixed sleep.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// ackedSeq reads the acked-seq gauge of the only subscriber in reg.
func ackedSeq(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == outbox.MetricLastAckedSeq && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
