package outbox

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/contracts/webhook"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// Subscriber is a webhook that receives events as POSTed JSON envelopes.
type Subscriber struct {
	// Name identifies the subscriber's delivery progress in the database;
	// renaming a subscriber makes it start again from the first event.
	Name string
	// URL receives POST requests with one Envelope as the JSON body. Any
	// 2xx answer acknowledges the event; anything else is retried.
	URL string
	// Types lists the event types to deliver; empty means all.
	Types []string
	// SchemaVersion is the version of each event's data the subscriber
	// reads: every event comes in the highest version of its type not
	// above it (upcast by the Dispatcher's Upcasters). Zero means 1.
	SchemaVersion int
	// Key signs every delivery (webhook-signature, HMAC-SHA256 in the
	// Standard Webhooks style: contracts/webhook). Build it from the
	// configured secret with webhook.Key. Empty means unsigned deliveries
	// (webhook-id and webhook-timestamp are sent anyway).
	Key []byte
}

// Delivery headers sent with every webhook POST besides Content-Type, so a
// receiver can route or dedupe without parsing the body.
const (
	HeaderEventID   = "Ficus-Event-Id"
	HeaderEventType = "Ficus-Event-Type"
	HeaderRequestID = "X-Request-Id" // the envelope's CorrelationID
)

// Option tunes a Dispatcher.
type Option func(*Dispatcher)

// WithBackoff sets the retry delays after a failed delivery: the ceiling
// starts at initial and doubles per consecutive failure up to maxDelay; the
// actual delay is drawn uniformly from [ceiling/2, ceiling] (jitter, so that
// subscribers recovering together do not retry in lockstep). Defaults 200ms
// and 30s; values <= 0 keep the default.
func WithBackoff(initial, maxDelay time.Duration) Option {
	return func(d *Dispatcher) {
		if initial > 0 {
			d.backoffInitial = initial
		}
		if maxDelay > 0 {
			d.backoffMax = maxDelay
		}
		d.backoffMax = max(d.backoffMax, d.backoffInitial)
	}
}

// WithPollInterval sets how often an idle subscriber looks for events that
// arrived without a Kick (for example written by another process). Default
// 1s; <= 0 keeps the default.
func WithPollInterval(p time.Duration) Option {
	return func(d *Dispatcher) {
		if p > 0 {
			d.poll = p
		}
	}
}

// WithBatchSize sets how many events a subscriber reads from the log per
// query. Default 100; <= 0 keeps the default.
func WithBatchSize(n int) Option {
	return func(d *Dispatcher) {
		if n > 0 {
			d.batch = min(n, MaxPageSize)
		}
	}
}

// WithDeliveryTimeout bounds each webhook POST, in addition to any timeout
// of the http.Client. Default 10s; <= 0 keeps the default.
func WithDeliveryTimeout(t time.Duration) Option {
	return func(d *Dispatcher) {
		if t > 0 {
			d.deliveryTimeout = t
		}
	}
}

// WithSleep replaces the function that waits between retries. It must
// return early with ctx.Err() when ctx is done. Tests inject one to observe
// the backoff without waiting for it.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(d *Dispatcher) {
		if sleep != nil {
			d.sleep = sleep
		}
	}
}

// WithUpcasters lets subscribers read newer schemaVersions of the events
// than the outbox stores (Subscriber.SchemaVersion).
func WithUpcasters(ups ...Upcaster) Option {
	return func(d *Dispatcher) { d.ups = slices.Clone(ups) }
}

// WithClock sets the clock that stamps delivery progress. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(d *Dispatcher) {
		if now != nil {
			d.now = now
		}
	}
}

// Dispatcher delivers the outbox to webhook subscribers at least once and in
// Seq order per subscriber: a subscriber gets event n+1 only after it
// acknowledged event n, retried with exponential backoff and jitter for as
// long as it fails (so one dead subscriber never delays another, and never
// loses an event). Progress is stored in outbox_deliveries after each
// acknowledgement, so a restart resumes where delivery stopped; at worst the
// one event in flight at a crash is delivered again, which consumers absorb
// by deduplicating on EventID.
type Dispatcher struct {
	db     *sqlitedb.DB
	subs   []Subscriber
	client *http.Client
	log    *slog.Logger

	backoffInitial  time.Duration
	backoffMax      time.Duration
	poll            time.Duration
	batch           int
	deliveryTimeout time.Duration
	sleep           func(context.Context, time.Duration) error
	now             func() time.Time
	ups             []Upcaster

	metrics  *dispatcherMetrics
	setupErr error // from an Option; returned by Run

	wake    []chan struct{} // one per subscriber, capacity 1
	running atomic.Bool
}

// NewDispatcher builds a Dispatcher; nothing happens until Run. A nil
// client means http.DefaultClient, a nil log discards logs.
func NewDispatcher(db *sqlitedb.DB, subs []Subscriber, client *http.Client, log *slog.Logger, opts ...Option) *Dispatcher {
	if client == nil {
		client = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		db:              db,
		subs:            slices.Clone(subs),
		client:          client,
		log:             log,
		backoffInitial:  200 * time.Millisecond,
		backoffMax:      30 * time.Second,
		poll:            time.Second,
		batch:           100,
		deliveryTimeout: 10 * time.Second,
		sleep:           sleepCtx,
		now:             time.Now,
	}
	for _, o := range opts {
		o(d)
	}
	d.wake = make([]chan struct{}, len(d.subs))
	for i := range d.wake {
		d.wake[i] = make(chan struct{}, 1)
	}
	return d
}

// Kick wakes every idle subscriber so that an event committed just now is
// delivered without waiting for the poll interval. It never blocks and is
// safe to call from any goroutine, before or during Run.
func (d *Dispatcher) Kick() {
	for _, w := range d.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx is done, then returns nil; with no subscribers it
// just waits for ctx. It returns an error at once if the subscribers are
// misconfigured (empty or duplicate name, bad URL) or if Run is already
// running.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.setupErr != nil {
		return d.setupErr
	}
	if err := ValidateSubscribers(d.subs); err != nil {
		return err
	}
	var errs []error
	for i, s := range d.subs {
		if latest := Latest(d.ups); s.SchemaVersion > latest {
			errs = append(errs, fmt.Errorf("subscribers[%d] (%s): schemaVersion %d is above this service's latest, %d", i, s.Name, s.SchemaVersion, latest))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("outbox dispatcher is already running")
	}
	defer d.running.Store(false)
	var wg sync.WaitGroup
	for i := range d.subs {
		wg.Go(func() { d.serve(ctx, d.subs[i], d.wake[i]) })
	}
	wg.Wait()
	<-ctx.Done()
	return nil
}

// ValidateSubscribers reports every problem of a subscriber list at once:
// empty or duplicate names and URLs that are not absolute http(s). Services
// call it when loading configuration so that a typo fails at start, not at
// the first event.
func ValidateSubscribers(subs []Subscriber) error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range subs {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("subscribers[%d]: empty name", i))
		} else if seen[s.Name] {
			errs = append(errs, fmt.Errorf("subscribers[%d]: duplicate name %q", i, s.Name))
		}
		seen[s.Name] = true
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("subscribers[%d] (%s): URL %q is not an absolute http(s) URL", i, s.Name, s.URL))
		}
		if s.SchemaVersion < 0 {
			errs = append(errs, fmt.Errorf("subscribers[%d] (%s): schemaVersion %d is negative", i, s.Name, s.SchemaVersion))
		}
	}
	return errors.Join(errs...)
}

// serve is one subscriber's delivery loop.
func (d *Dispatcher) serve(ctx context.Context, sub Subscriber, wake <-chan struct{}) {
	log := d.log.With("subscriber", sub.Name)
	var (
		last     int64
		loaded   bool
		failures int
	)
	// retry waits before trying again after any failure, the subscriber's
	// or the database's, with a backoff that grows per consecutive failure.
	retry := func() bool {
		delay := d.backoff(failures)
		failures++
		return d.sleep(ctx, delay) == nil
	}
	for ctx.Err() == nil {
		if !loaded {
			var err error
			if last, err = d.progress(ctx, sub.Name); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Error("reading delivery progress", "err", err)
				if !retry() {
					return
				}
				continue
			}
			loaded = true
		}
		events, err := Events(ctx, d.db.R, last, d.batch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("reading outbox", "err", err, "after", last)
			if !retry() {
				return
			}
			continue
		}
		if len(events) == 0 {
			failures = 0
			t := time.NewTimer(d.poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-wake:
				t.Stop()
			case <-t.C:
			}
			continue
		}
		advanced := last
		for _, e := range events {
			if len(sub.Types) > 0 && !slices.Contains(sub.Types, e.Type) {
				advanced = e.Seq
				continue
			}
			if err := d.deliver(ctx, sub, e.Envelope); err != nil {
				if ctx.Err() != nil {
					break
				}
				d.metrics.delivered(sub.Name, false, e.OccurredAt, d.now())
				log.Warn("delivery failed; will retry", "err", err, "seq", e.Seq,
					"event_id", e.EventID, "type", e.Type, "request_id", e.CorrelationID, "attempt", failures+1)
				break
			}
			failures = 0
			advanced = e.Seq
			d.metrics.delivered(sub.Name, true, e.OccurredAt, d.now())
			log.Debug("event delivered", "seq", e.Seq, "event_id", e.EventID, "type", e.Type, "request_id", e.CorrelationID)
			// Persist after every acknowledgement: a crash then repeats at
			// most the event in flight.
			if err := d.saveProgress(ctx, sub.Name, advanced); err != nil {
				log.Error("saving delivery progress", "err", err, "seq", advanced)
				break
			}
			last = advanced
		}
		if advanced != last {
			// Only skipped (filtered) events remain unsaved.
			if err := d.saveProgress(ctx, sub.Name, advanced); err != nil {
				log.Error("saving delivery progress", "err", err, "seq", advanced)
			} else {
				last = advanced
			}
		}
		if ctx.Err() != nil {
			return
		}
		if advanced < events[len(events)-1].Seq {
			// Stopped early on a failure: back off before retrying the same event.
			if !retry() {
				return
			}
		}
	}
}

// backoff returns the delay before retry number failures+1: a ceiling of
// initial * 2^failures capped at backoffMax, jittered to [ceiling/2, ceiling].
func (d *Dispatcher) backoff(failures int) time.Duration {
	ceiling := d.backoffInitial
	for i := 0; i < failures && ceiling < d.backoffMax; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, d.backoffMax)
	half := ceiling / 2
	return half + rand.N(ceiling-half+1)
}

func (d *Dispatcher) deliver(ctx context.Context, sub Subscriber, e Envelope) error {
	e, err := Convert(d.ups, e, sub.SchemaVersion)
	if err != nil {
		return err
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding envelope: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	// Signed per attempt: a retry carries a fresh timestamp, so it passes
	// the receiver's replay window however late it comes.
	signedAt := d.now()
	req.Header.Set(webhook.HeaderID, e.EventID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(signedAt.Unix(), 10))
	if len(sub.Key) > 0 {
		req.Header.Set(webhook.HeaderSignature, webhook.Sign(sub.Key, e.EventID, signedAt, body))
	}
	req.Header.Set(HeaderEventID, e.EventID)
	req.Header.Set(HeaderEventType, e.Type)
	if e.CorrelationID != "" {
		req.Header.Set(HeaderRequestID, e.CorrelationID)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to %s: %w", sub.URL, err)
	}
	// Drain a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %d", sub.URL, resp.StatusCode)
	}
	return nil
}

func (d *Dispatcher) progress(ctx context.Context, name string) (int64, error) {
	var last int64
	err := d.db.R.QueryRowContext(ctx, `SELECT last_seq FROM outbox_deliveries WHERE subscriber = ?`, name).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading progress of %s: %w", name, err)
	}
	return last, nil
}

// saveProgress records seq for name. It deliberately ignores ctx's
// cancellation: an acknowledged delivery is worth remembering even while
// shutting down, and the write is short.
func (d *Dispatcher) saveProgress(ctx context.Context, name string, seq int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := d.db.W.ExecContext(ctx, `INSERT INTO outbox_deliveries(subscriber, last_seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(subscriber) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at
		WHERE excluded.last_seq > outbox_deliveries.last_seq`,
		name, seq, d.now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("saving progress of %s at %d: %w", name, seq, err)
	}
	d.metrics.progressed(name, seq)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
