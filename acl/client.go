package acl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ClientConfig configures a Client. Zero values mean the defaults named on
// each field.
type ClientConfig struct {
	// BaseURL is the legacy's root, e.g. http://127.0.0.1:8081 (paths
	// /shop/... are appended). Required.
	BaseURL string
	// Timeout bounds one attempt (request, and reading the whole answer).
	// 0 means 5s.
	Timeout time.Duration
	// Retries is how many times a safe call (GET, or placeOrder.do with an
	// ext_ref, which the legacy makes idempotent) is repeated after a
	// transport error, timeout or HTTP 5xx. Unsafe calls (pay, ship,
	// cancel) are never repeated. 0 means 2; negative means none.
	Retries int
	// RetryBackoff is the wait before the first retry, doubled for each
	// further one. 0 means 50ms.
	RetryBackoff time.Duration
	// BreakerFailures is how many consecutive failed attempts open the
	// circuit breaker, after which calls fail at once with ErrUnavailable.
	// 0 means 5.
	BreakerFailures uint32
	// BreakerOpenFor is how long the open breaker refuses calls before
	// letting one probe through. 0 means 10s.
	BreakerOpenFor time.Duration
	// HTTPClient sends the requests; its own Timeout should be 0 or above
	// Timeout. nil means a client with a keep-alive pool of 32 connections.
	HTTPClient *http.Client
}

// Default values of ClientConfig.
const (
	DefaultClientTimeout   = 5 * time.Second
	DefaultRetries         = 2
	DefaultRetryBackoff    = 50 * time.Millisecond
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 10 * time.Second
)

// Client calls the legacy shop. Every method returns the legacy's document
// as its Go mirror, a *LegacyError for a business error, or an error
// wrapping ErrUnavailable, ErrProtocol, ErrMalformed or ErrTooLarge. It is
// safe for concurrent use.
type Client struct {
	base    *url.URL
	cfg     ClientConfig
	http    *http.Client
	breaker *gobreaker.CircuitBreaker[[]byte]
	log     *slog.Logger
}

// NewClient checks cfg and builds a Client. A nil log discards logs.
func NewClient(cfg ClientConfig, log *slog.Logger) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("acl: ClientConfig.BaseURL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if cfg.Timeout < 0 || cfg.RetryBackoff < 0 || cfg.BreakerOpenFor < 0 {
		return nil, errors.New("acl: ClientConfig durations must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultClientTimeout
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.BreakerOpenFor == 0 {
		cfg.BreakerOpenFor = DefaultBreakerOpenFor
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
			MaxIdleConns:        32,
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     60 * time.Second,
		}}
	}
	c := &Client{base: u, cfg: cfg, http: hc, log: log.With("component", "legacy-client")}
	failures := cfg.BreakerFailures
	c.breaker = gobreaker.NewCircuitBreaker[[]byte](gobreaker.Settings{
		Name:        "legacy",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= failures },
		// A protocol error or an oversized document proves the legacy is up.
		IsSuccessful: func(err error) bool {
			return err == nil || errors.Is(err, ErrProtocol) || errors.Is(err, ErrTooLarge)
		},
		// A caller that gave up says nothing about the legacy's health.
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.log.Warn("legacy circuit breaker changed state", "from", from.String(), "to", to.String())
		},
	})
	return c, nil
}

var errCallerGone = errors.New("caller gave up")

type requestIDKey struct{}

// WithRequestID returns a context whose legacy calls carry id as
// X-Request-ID, so the legacy's log lines join the caller's.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// call performs one logical legacy call, retrying safe ones, and decodes the
// answer into v.
func (c *Client) call(ctx context.Context, method, path string, form url.Values, safe bool, v any) error {
	attempts := 1
	if safe {
		attempts += c.cfg.Retries
	}
	backoff := c.cfg.RetryBackoff
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w: %s: %w (after %v)", ErrUnavailable, path, ctx.Err(), last)
			case <-t.C:
			}
			backoff *= 2
			c.log.Info("retrying legacy call", "path", path, "attempt", i+1, "err", last, "request_id", reqID(ctx))
		}
		body, err := c.breaker.Execute(func() ([]byte, error) { return c.roundTrip(ctx, method, path, form) })
		if err == nil {
			return DecodeBytes(body, v)
		}
		switch {
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			return fmt.Errorf("%w: %s: circuit breaker: %w", ErrUnavailable, path, err)
		case errors.Is(err, errCallerGone):
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, path, ctx.Err())
		case !errors.Is(err, ErrUnavailable):
			return err // protocol errors and oversized answers do not improve by retrying
		}
		last = err
	}
	return last
}

func reqID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// roundTrip is one attempt: it returns the body of an HTTP 200 answer.
func (c *Client) roundTrip(ctx context.Context, method, path string, form url.Values) ([]byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	var body io.Reader
	if method == http.MethodGet {
		u.RawQuery = form.Encode()
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(actx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: building %s: %w", ErrProtocol, path, err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if id := reqID(ctx); id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", errCallerGone, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxDocumentBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", errCallerGone, ctx.Err())
		}
		// A streamed document cut off mid-way: the legacy failed after
		// it started answering.
		return nil, fmt.Errorf("%w: %s %s: reading answer: %w", ErrUnavailable, method, path, err)
	}
	switch {
	case res.StatusCode >= 500:
		return nil, fmt.Errorf("%w: %s %s: HTTP %d", ErrUnavailable, method, path, res.StatusCode)
	case res.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s %s: HTTP %d", ErrProtocol, method, path, res.StatusCode)
	case len(data) > MaxDocumentBytes:
		return nil, fmt.Errorf("%w: %s %s", ErrTooLarge, method, path)
	}
	return data, nil
}

// Product reads one article in full form (productDetail.do).
func (c *Client) Product(ctx context.Context, artNr string) (Artikel, error) {
	var a Artikel
	err := c.call(ctx, http.MethodGet, "/shop/productDetail.do", url.Values{"art_nr": {artNr}}, true, &a)
	return a, err
}

// CatalogExport reads the whole catalog in full form (export/catalog.xml),
// only category kat when kat is not empty.
func (c *Client) CatalogExport(ctx context.Context, kat string) (KatalogExport, error) {
	var k KatalogExport
	q := url.Values{}
	if kat != "" {
		q.Set("cat", kat)
	}
	err := c.call(ctx, http.MethodGet, "/shop/export/catalog.xml", q, true, &k)
	return k, err
}

// Order reads one order (orderStatus.do).
func (c *Client) Order(ctx context.Context, ordNo string) (Auftrag, error) {
	var a Auftrag
	err := c.call(ctx, http.MethodGet, "/shop/orderStatus.do", url.Values{"ord_no": {ordNo}}, true, &a)
	return a, err
}

// CustomerOrders reads every order of a customer (customerOrders.do).
func (c *Client) CustomerOrders(ctx context.Context, custNo string) (KundenAuftraege, error) {
	var k KundenAuftraege
	err := c.call(ctx, http.MethodGet, "/shop/customerOrders.do", url.Values{"cust_no": {custNo}}, true, &k)
	return k, err
}

// Item is one line of a placeOrder.do form.
type Item struct {
	ArtNr string
	Qty   int
}

// PlaceOrderForm is the form of placeOrder.do.
type PlaceOrderForm struct {
	CustNo string
	Items  []Item
	// ExtRef is the caller's idempotency key (1-64 printable ASCII, no
	// spaces). With one, the call is safe to retry: the legacy replays the
	// order it made first (wiederholt="J").
	ExtRef string
}

// Values encodes the form as the legacy reads it (item=ART-1:2, ...).
func (f PlaceOrderForm) Values() url.Values {
	v := url.Values{"cust_no": {f.CustNo}}
	for _, it := range f.Items {
		v.Add("item", it.ArtNr+":"+strconv.Itoa(it.Qty))
	}
	if f.ExtRef != "" {
		v.Set("ext_ref", f.ExtRef)
	}
	return v
}

// PlaceOrder places an order. It is retried only when f has an ExtRef.
func (c *Client) PlaceOrder(ctx context.Context, f PlaceOrderForm) (Auftrag, error) {
	var a Auftrag
	err := c.call(ctx, http.MethodPost, "/shop/placeOrder.do", f.Values(), f.ExtRef != "", &a)
	return a, err
}

// Action is a legacy status change.
type Action string

// The legacy's status changes; each is its own servlet.
const (
	ActionPay    Action = "pay"
	ActionShip   Action = "ship"
	ActionCancel Action = "cancel"
)

var actionPaths = map[Action]string{
	ActionPay:    "/shop/payOrder.do",
	ActionShip:   "/shop/shipOrder.do",
	ActionCancel: "/shop/cancelOrder.do",
}

// Transition applies a status change and returns the order after it. It is
// never retried: a repeated change is an E003, not a no-op.
func (c *Client) Transition(ctx context.Context, a Action, ordNo string) (Auftrag, error) {
	path, ok := actionPaths[a]
	if !ok {
		return Auftrag{}, fmt.Errorf("%w: action %q", ErrUnknownValue, a)
	}
	var o Auftrag
	err := c.call(ctx, http.MethodPost, path, url.Values{"ord_no": {ordNo}}, false, &o)
	return o, err
}

// OrdersSince reads one page of the orders change feed: orders changed after
// sequence since, at most max (1-1000) of them.
func (c *Client) OrdersSince(ctx context.Context, since int64, max int) (Export, error) {
	return c.feed(ctx, "/shop/export/orders.do", since, max)
}

// ProductsSince reads one page of the articles change feed.
func (c *Client) ProductsSince(ctx context.Context, since int64, max int) (Export, error) {
	return c.feed(ctx, "/shop/export/products.do", since, max)
}

func (c *Client) feed(ctx context.Context, path string, since int64, max int) (Export, error) {
	var e Export
	q := url.Values{"since": {strconv.FormatInt(since, 10)}, "max": {strconv.Itoa(max)}}
	err := c.call(ctx, http.MethodGet, path, q, true, &e)
	return e, err
}
