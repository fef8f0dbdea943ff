package order

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/ficus-gw/ficus/apierr"
)

// product is the part of the Catalog's product representation that orders
// need. Unknown fields are ignored on purpose: the Catalog may add fields.
type product struct {
	Sku   string `json:"sku"`
	Name  string `json:"name"`
	Price Money  `json:"price"`
	// Stock is what the Catalog has on hand and unreserved; only dry runs
	// read it, real placements let the reservation decide.
	Stock int64 `json:"stock"`
}

// Business outcomes of Catalog calls. They are answers from a healthy
// Catalog, so they never count against the breaker.
var (
	errUnknownSku = errors.New("catalog: unknown sku")
	errOutOfStock = errors.New("catalog: out of stock")
	// errReferenceReleased: the Catalog refused a reservation because its
	// reference (the order id) was released by reference before.
	errReferenceReleased = errors.New("catalog: reservation reference already released")
)

// releasedReason is the details.reason of the Catalog's 409 CONFLICT for a
// reservation under a released reference.
const releasedReason = "reservation-reference-released"

// catalogFailure is a Catalog call that failed because the Catalog is
// unhealthy or unreachable: these, and only these, trip the breaker.
type catalogFailure struct{ err error }

func (f *catalogFailure) Error() string { return "catalog unavailable: " + f.err.Error() }
func (f *catalogFailure) Unwrap() error { return f.err }

// catalogReply is what a call returns through the breaker: a status and a
// small body, read fully so the connection can be reused.
type catalogReply struct {
	status int
	body   []byte
}

// maxCatalogBody caps how much of a Catalog response is read; products are
// small, and a misbehaving upstream must not exhaust memory.
const maxCatalogBody = 1 << 20

// catalogClient talks to the Catalog's HTTP API with a per-call timeout and
// a circuit breaker, so that a slow or dead Catalog costs callers at most
// one timeout per breaker window instead of one per request.
type catalogClient struct {
	base     string
	http     *http.Client
	timeout  time.Duration
	breaker  *gobreaker.CircuitBreaker[catalogReply]
	openFor  time.Duration
	openedAt atomic.Int64 // unix nanoseconds by the injected clock
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics
}

func newCatalogClient(cfg Config, log *slog.Logger, m *metrics) *catalogClient {
	c := &catalogClient{
		base:    strings.TrimRight(cfg.CatalogURL, "/"),
		timeout: cfg.CatalogTimeout,
		openFor: cfg.BreakerOpenFor,
		now:     cfg.Now,
		log:     log,
		metrics: m,
		http: &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConns:        64,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     90 * time.Second,
			},
			// Redirects from the Catalog would be a misconfiguration; do
			// not follow them silently.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	failures := cfg.BreakerFailures
	c.breaker = gobreaker.NewCircuitBreaker[catalogReply](gobreaker.Settings{
		Name:        "catalog",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= failures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				c.openedAt.Store(c.now().UnixNano())
			}
			if to == gobreaker.StateClosed {
				m.breakerOpen.Set(0)
			} else {
				m.breakerOpen.Set(1)
			}
			log.Warn("catalog circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
		IsSuccessful: func(err error) bool {
			var f *catalogFailure
			return err == nil || !errors.As(err, &f)
		},
		// A caller that went away says nothing about the Catalog's health.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	})
	return c
}

// close releases idle connections.
func (c *catalogClient) close() { c.http.CloseIdleConnections() }

// do sends one request through the breaker. A transport error, a timeout or
// a 5xx is a *catalogFailure; any other status is returned for the caller to
// interpret.
func (c *catalogClient) do(ctx context.Context, method, path string, body []byte, header http.Header) (catalogReply, error) {
	r, err := c.call(ctx, method, path, body, header)
	var f *catalogFailure
	switch {
	case err == nil:
		c.metrics.catalogCalls.WithLabelValues("ok").Inc()
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		c.metrics.catalogCalls.WithLabelValues("rejected").Inc()
	case errors.As(err, &f):
		c.metrics.catalogCalls.WithLabelValues("failure").Inc()
	}
	return r, err
}

func (c *catalogClient) call(ctx context.Context, method, path string, body []byte, header http.Header) (catalogReply, error) {
	return c.breaker.Execute(func() (catalogReply, error) {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
		if err != nil {
			return catalogReply{}, fmt.Errorf("building catalog request: %w", err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return catalogReply{}, err // the caller left: excluded from the breaker
			}
			return catalogReply{}, &catalogFailure{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxCatalogBody))
		if err != nil {
			return catalogReply{}, &catalogFailure{err: fmt.Errorf("reading catalog response: %w", err)}
		}
		if resp.StatusCode >= 500 {
			return catalogReply{}, &catalogFailure{err: fmt.Errorf("%s %s answered %d", method, path, resp.StatusCode)}
		}
		return catalogReply{status: resp.StatusCode, body: b}, nil
	})
}

// unavailable turns a failed call into the 503 the client sees, with a
// Retry-After that tells it when the breaker will let a probe through.
func (c *catalogClient) unavailable(err error, requestID string) *apierr.Error {
	retry := 1
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		left := c.openFor - c.now().Sub(time.Unix(0, c.openedAt.Load()))
		retry = max(1, int(math.Ceil(left.Seconds())))
	} else {
		c.log.Warn("catalog call failed", "err", err, "request_id", requestID)
	}
	e := apierr.New(apierr.CodeDependency, "the catalog is unavailable; retry later")
	e.RetryAfter = retry
	return e
}

// product fetches one product; errUnknownSku when the Catalog has none.
func (c *catalogClient) product(ctx context.Context, sku, requestID string) (product, error) {
	h := http.Header{apierr.RequestIDHeader: {requestID}}
	r, err := c.do(ctx, http.MethodGet, "/api/v1/products/"+url.PathEscape(sku), nil, h)
	if err != nil {
		return product{}, err
	}
	switch r.status {
	case http.StatusOK:
		var p product
		if err := json.Unmarshal(r.body, &p); err != nil {
			return product{}, fmt.Errorf("decoding catalog product %s: %w", sku, err)
		}
		return p, nil
	case http.StatusNotFound:
		return product{}, errUnknownSku
	}
	return product{}, fmt.Errorf("catalog GET product %s answered %d: %s", sku, r.status, truncate(r.body))
}

// stockAdjustment is the Catalog's request body for
// POST /api/v1/products/{sku}/stock-adjustments.
type stockAdjustment struct {
	Delta     int64  `json:"delta"`
	Reason    string `json:"reason"`
	Reference string `json:"reference"`
}

// adjustStock changes a product's stock by delta. key makes the call
// idempotent on the Catalog side, so a retry after a lost response, or a
// compensation that runs twice, changes stock once.
func (c *catalogClient) adjustStock(ctx context.Context, sku string, delta int64, reason, reference, key, requestID string) error {
	body, err := json.Marshal(stockAdjustment{Delta: delta, Reason: reason, Reference: reference})
	if err != nil {
		return err
	}
	h := http.Header{"Idempotency-Key": {key}, apierr.RequestIDHeader: {requestID}}
	r, err := c.do(ctx, http.MethodPost, "/api/v1/products/"+url.PathEscape(sku)+"/stock-adjustments", body, h)
	if err != nil {
		return err
	}
	switch r.status {
	case http.StatusOK, http.StatusCreated:
		return nil
	case http.StatusNotFound:
		return errUnknownSku
	case http.StatusUnprocessableEntity:
		var b apierr.Body
		if json.Unmarshal(r.body, &b) == nil && b.Code == apierr.CodeOutOfStock {
			return errOutOfStock
		}
	case http.StatusConflict:
		var b struct {
			Code    string `json:"code"`
			Details struct {
				Reason string `json:"reason"`
			} `json:"details"`
		}
		if json.Unmarshal(r.body, &b) == nil && b.Code == apierr.CodeConflict && b.Details.Reason == releasedReason {
			return errReferenceReleased
		}
	}
	return fmt.Errorf("catalog stock adjustment of %s by %d answered %d: %s", sku, delta, r.status, truncate(r.body))
}

// releaseReference releases every reservation the Catalog holds under
// reference and makes it refuse later reservations under it. Calling it
// again changes nothing, so a retry after a lost answer is safe.
func (c *catalogClient) releaseReference(ctx context.Context, reference, requestID string) error {
	h := http.Header{apierr.RequestIDHeader: {requestID}}
	r, err := c.do(ctx, http.MethodPost, "/api/v1/stock-reservations/"+url.PathEscape(reference)+"/release", []byte("{}"), h)
	if err != nil {
		return err
	}
	if r.status == http.StatusOK {
		return nil
	}
	return fmt.Errorf("catalog release of reservations of %s answered %d: %s", reference, r.status, truncate(r.body))
}

func truncate(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
