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

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/shadow"
)

// Client calls the admin API, reports included; it backs `ficus ctl`.
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
	// Details is the answer's details object, if any (for STATE_CONFLICT:
	// a ConflictDetails).
	Details json.RawMessage
}

// Conflict decodes the details of a STATE_CONFLICT answer.
func (e *APIError) Conflict() (ConflictDetails, bool) {
	var d ConflictDetails
	if e.Code != CodeStateConflict || json.Unmarshal(e.Details, &d) != nil {
		return ConflictDetails{}, false
	}
	return d, true
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
	case CodeStateConflict:
		return "someone changed the route first: look at it (`ficus ctl routes`), then retry with --expect-version set to its version"
	case CodeControlPlaneUnavailable:
		return "nothing was changed and traffic is unaffected; check the control plane database (controlPlane in the config), then retry"
	case CodeInternal:
		return "retry; if it persists, find the request id in the gateway log"
	}
	return rolloutHint(code)
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

// Status returns the replica's control plane status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, "/status", nil, &out)
}

// SetCanary sets a route's canary percent. expect, when not 0, is the state
// version the change is based on (If-Match): if the route changed since,
// the answer is an *APIError with CodeStateConflict.
func (c *Client) SetCanary(ctx context.Context, route string, percent float64, reason string, expect int64) (ChangeResult, error) {
	var out ChangeResult
	body := map[string]any{"percent": percent, "reason": reason}
	return out, c.doMatch(ctx, http.MethodPut, "/routes/"+url.PathEscape(route)+"/canary", body, &out, expect)
}

// Pin sends all of a route's traffic to backend ("legacy" or "new"); expect
// as for SetCanary.
func (c *Client) Pin(ctx context.Context, route, backend, reason string, expect int64) (ChangeResult, error) {
	var out ChangeResult
	body := map[string]any{"backend": backend, "reason": reason}
	return out, c.doMatch(ctx, http.MethodPost, "/routes/"+url.PathEscape(route)+"/pin", body, &out, expect)
}

// Resume removes a route's pin; expect as for SetCanary.
func (c *Client) Resume(ctx context.Context, route, reason string, expect int64) (ChangeResult, error) {
	var out ChangeResult
	body := map[string]any{"reason": reason}
	return out, c.doMatch(ctx, http.MethodPost, "/routes/"+url.PathEscape(route)+"/resume", body, &out, expect)
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

// ShadowReports returns one route's shadow report (with samples) when
// route is set, every shadowed route's otherwise.
func (c *Client) ShadowReports(ctx context.Context, route string) ([]shadow.Report, error) {
	if route != "" {
		var r shadow.Report
		if err := c.do(ctx, http.MethodGet, "/shadow/"+url.PathEscape(route), nil, &r); err != nil {
			return nil, err
		}
		return []shadow.Report{r}, nil
	}
	var rs []shadow.Report
	return rs, c.do(ctx, http.MethodGet, "/shadow", nil, &rs)
}

// RetireReport returns the retirement report; window 0 means the
// gateway's retire.window.
func (c *Client) RetireReport(ctx context.Context, window time.Duration) (retire.Report, error) {
	path := "/retire"
	if window > 0 {
		path += "?window=" + url.QueryEscape(window.String())
	}
	var rep retire.Report
	return rep, c.do(ctx, http.MethodGet, path, nil, &rep)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doMatch(ctx, method, path, in, out, 0)
}

func (c *Client) doMatch(ctx context.Context, method, path string, in, out any, expect int64) error {
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
	if expect != 0 {
		req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(expect, 10)))
	}
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
		var eb struct {
			apierr.Body
			Details json.RawMessage `json:"details"`
		}
		if json.Unmarshal(raw, &eb) != nil || eb.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: CodeInternal,
				Message: fmt.Sprintf("the admin API answered HTTP %d without an error body; is %s the admin listener?", resp.StatusCode, c.base)}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message, RequestID: eb.RequestID, Details: eb.Details}
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
