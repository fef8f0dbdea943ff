package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/newsvc/apierr"
)

// Client calls the admin API; it backs `ficus ctl`.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client for the admin listener at baseURL (e.g.
// "http://127.0.0.1:8090"; Prefix is added) authenticating with token.
// httpClient nil means one with a 10 s timeout.
func NewClient(baseURL, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin URL %q: want http://host:port, e.g. http://127.0.0.1:8090", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: u, token: token, http: httpClient}, nil
}

// APIError is an error answer of the admin API. Its message says what went
// wrong and what to do next.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code is the machine-readable code (the Code* constants).
	Code string
	// Message is the server's explanation.
	Message string
	// RequestID finds the call in the gateway log.
	RequestID string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if h := hint(e.Code); h != "" {
		b.WriteString("\n  next: ")
		b.WriteString(h)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, "\n  (%s, HTTP %d, request id %s)", e.Code, e.Status, e.RequestID)
	}
	return b.String()
}

// hint says what to do next about an error code.
func hint(code string) string {
	switch code {
	case CodeUnauthorized:
		return "check the admin token: it must be one of admin.tokens in the gateway config (value or valueEnv)"
	case CodeForbidden:
		return "use a token whose scopes include the one named above (admin.tokens[].scopes)"
	case CodeNotFound:
		return "list the route names with `ficus ctl routes`"
	case CodeReasonRequired:
		return `say why with --reason "..." (it goes into the audit log)`
	case CodeInvalidPercent:
		return "give a percent between 0 and 100, e.g. 5 or 0.5"
	case CodeInvalidBackend:
		return "name the backend legacy or new"
	case CodeNoNewBackend:
		return "give the route a new upstream in the config (routes[].new) first"
	case CodeAuditUnavailable:
		return "nothing was changed; check the disk and the audit database (admin.auditDB), then retry"
	case CodeInternal:
		return "retry; if it persists, find the request id in the gateway log"
	}
	return ""
}

// Routes lists every route with its live state.
func (c *Client) Routes(ctx context.Context) ([]RouteView, error) {
	var out []RouteView
	return out, c.do(ctx, http.MethodGet, "/routes", nil, &out)
}

// Route returns one route's live state.
func (c *Client) Route(ctx context.Context, name string) (RouteView, error) {
	var out RouteView
	return out, c.do(ctx, http.MethodGet, "/routes/"+url.PathEscape(name), nil, &out)
}

// SetCanary sets a route's canary percent.
func (c *Client) SetCanary(ctx context.Context, route string, percent float64, reason string) (ChangeResult, error) {
	var out ChangeResult
	body := map[string]any{"percent": percent, "reason": reason}
	return out, c.do(ctx, http.MethodPut, "/routes/"+url.PathEscape(route)+"/canary", body, &out)
}

// Pin sends all of a route's traffic to backend ("legacy" or "new").
func (c *Client) Pin(ctx context.Context, route, backend, reason string) (ChangeResult, error) {
	var out ChangeResult
	body := map[string]any{"backend": backend, "reason": reason}
	return out, c.do(ctx, http.MethodPost, "/routes/"+url.PathEscape(route)+"/pin", body, &out)
}

// Resume removes a route's pin.
func (c *Client) Resume(ctx context.Context, route, reason string) (ChangeResult, error) {
	var out ChangeResult
	body := map[string]any{"reason": reason}
	return out, c.do(ctx, http.MethodPost, "/routes/"+url.PathEscape(route)+"/resume", body, &out)
}

// Audit returns the newest audit entries, optionally of one route; limit 0
// means the server's default (100).
func (c *Client) Audit(ctx context.Context, route string, limit int) ([]AuditEntry, error) {
	q := url.Values{}
	if route != "" {
		q.Set("route", route)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/audit"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out []AuditEntry
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+Prefix+path, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin API at %s: %w\n  next: is the gateway running? Its admin listener is admin.listen in the config (default 127.0.0.1:8090)", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb apierr.Body
		if json.Unmarshal(raw, &eb) != nil || eb.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: CodeInternal,
				Message: fmt.Sprintf("the admin API answered HTTP %d without an error body; is %s the admin listener?", resp.StatusCode, c.base)}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message, RequestID: eb.RequestID}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the admin API's answer: %w", err)
	}
	return nil
}

// IsCode reports whether err is an APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}
