package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Error codes the gateway answers with. They are stable: clients and
// alerts branch on them.
const (
	CodeBadRequest         = "BAD_REQUEST"          // 400: malformed request or path
	CodeNotFound           = "NOT_FOUND"            // 404: admin listener only
	CodeNotImplemented     = "NOT_IMPLEMENTED"      // 501: a method the server does not know
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"   // 405: method not in route.methods
	CodeBodyTooLarge       = "BODY_TOO_LARGE"       // 413: limits.maxRequestBodyBytes
	CodeHeadersTooLarge    = "HEADERS_TOO_LARGE"    // 431: limits.maxHeaderBytes
	CodeRequestTimeout     = "REQUEST_TIMEOUT"      // 408: the client was too slow to send
	CodeRateLimited        = "RATE_LIMITED"         // 429: route rate limit
	CodeUpstreamTimeout    = "UPSTREAM_TIMEOUT"     // 504
	CodeUpstreamUnreach    = "UPSTREAM_UNREACHABLE" // 502: connection refused / dial failed
	CodeUpstreamReset      = "UPSTREAM_RESET"       // 502: connection broke mid-exchange
	CodeUpstreamError      = "UPSTREAM_ERROR"       // 502: any other bad exchange
	CodeBackendUnavailable = "BACKEND_UNAVAILABLE"  // 503: breaker open, no fallback
	CodeInternal           = "INTERNAL"             // 500: a gateway bug (logged)
)

// Error is an error answered to the client as
// {"code","message","requestId"}. Handlers return it; the one ErrorHandler
// writes it.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, in seconds, is sent as Retry-After when > 0.
	RetryAfter int
	// Allow is sent as the Allow header of a 405.
	Allow string
	// Link is sent as the Link header (a retired route's successor).
	Link string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errors without per-request data are allocated once.
var (
	errBadPath          = &Error{Status: 400, Code: CodeBadRequest, Message: "the request path is malformed"}
	errAmbiguousFraming = &Error{Status: 400, Code: CodeBadRequest, Message: "Content-Length and Transfer-Encoding must not be combined"}
	errMissingHost      = &Error{Status: 400, Code: CodeBadRequest, Message: "the Host header is required"}
	errBareLFResp       = &Error{Status: 400, Code: CodeBadRequest, Message: "request lines must end with CRLF, not a bare LF"}
	errBadHeaderName    = &Error{Status: 400, Code: CodeBadRequest, Message: "a header field name is malformed (spaces, folded lines)"}
	errUpstreamTO       = &Error{Status: 504, Code: CodeUpstreamTimeout, Message: "the backend did not answer in time"}
	errUpstreamUnr      = &Error{Status: 502, Code: CodeUpstreamUnreach, Message: "the backend could not be reached"}
	errUpstreamReset    = &Error{Status: 502, Code: CodeUpstreamReset, Message: "the backend closed the connection"}
	errUpstreamOther    = &Error{Status: 502, Code: CodeUpstreamError, Message: "the backend sent no usable response"}
	errInternal         = &Error{Status: 500, Code: CodeInternal, Message: "internal error; quote the requestId when reporting it"}
	errBodyTooLarge     = &Error{Status: 413, Code: CodeBodyTooLarge, Message: "the request body exceeds the gateway's limit"}
	errHeadersTooBig    = &Error{Status: 431, Code: CodeHeadersTooLarge, Message: "the request headers exceed the gateway's limit"}
	errRequestTimeout   = &Error{Status: 408, Code: CodeRequestTimeout, Message: "the request was not received in time"}
	errMalformed        = &Error{Status: 400, Code: CodeBadRequest, Message: "the request is malformed"}
	errNotFound         = &Error{Status: 404, Code: CodeNotFound, Message: "no such endpoint"}
	errNotImplemented   = &Error{Status: 501, Code: CodeNotImplemented, Message: "the request method is not supported"}
)

// toError maps anything a handler or the server returned to an *Error
// whose message is the gateway's own: library text never reaches a client.
func toError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			return errBodyTooLarge, true
		case fiber.StatusRequestHeaderFieldsTooLarge:
			return errHeadersTooBig, true
		case fiber.StatusRequestTimeout:
			return errRequestTimeout, true
		case fiber.StatusNotFound:
			return errNotFound, true
		case fiber.StatusNotImplemented:
			return errNotImplemented, true
		case fiber.StatusMethodNotAllowed:
			return &Error{Status: 405, Code: CodeMethodNotAllowed, Message: "method not allowed"}, true
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return errMalformed, true
		}
	}
	return errInternal, false
}

// errorHandler is the app's only fiber.ErrorHandler. It also answers the
// requests fasthttp refused before any handler ran (malformed framing,
// oversize body), which carry no request id yet.
func (g *Gateway) errorHandler(c *fiber.Ctx, err error) error {
	e, known := toError(err)
	rid := c.Response().Header.Peek(apierr.RequestIDHeader)
	if len(rid) == 0 {
		var buf [requestIDMax]byte
		_, trusted := g.peer(c)
		rid = g.ids.requestID(c, buf[:0], trusted)
		c.Response().Header.SetBytesV(apierr.RequestIDHeader, rid)
		rid = c.Response().Header.Peek(apierr.RequestIDHeader)
	}
	if !known {
		g.log.Error("unhandled error", "request_id", string(rid), "method", string(c.Request().Header.Method()), "err", err)
	} else if e.Status < 500 && g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("request refused", "request_id", string(rid), "code", e.Code, "err", err)
	}
	if e == errBodyTooLarge {
		lingerAfterRefusal(c.Context().Conn())
	}
	writeError(c.Response(), e, rid)
	return nil
}

// writeError resets any partial upstream response and writes e, keeping
// the gateway's own X-Request-Id and X-Ficus-* headers.
func writeError(resp *fasthttp.Response, e *Error, rid []byte) {
	id := string(rid) // rid may point into the header about to be reset
	if resp.IsBodyStream() {
		_ = resp.CloseBodyStream()
	}
	var keep [4][2][]byte
	n := 0
	for _, k := range [...]string{apierr.RequestIDHeader, HeaderRoute, HeaderBackend, HeaderFallback} {
		if v := resp.Header.Peek(k); len(v) > 0 {
			keep[n] = [2][]byte{[]byte(k), append([]byte(nil), v...)}
			n++
		}
	}
	resp.Reset()
	for _, kv := range keep[:n] {
		resp.Header.SetBytesKV(kv[0], kv[1])
	}
	if e.RetryAfter > 0 {
		resp.Header.Set(fiber.HeaderRetryAfter, strconv.Itoa(e.RetryAfter))
	}
	if e.Allow != "" {
		resp.Header.Set(fiber.HeaderAllow, e.Allow)
	}
	if e.Link != "" {
		resp.Header.Set(fiber.HeaderLink, e.Link)
	}
	resp.SetStatusCode(e.Status)
	resp.Header.SetContentType(fiber.MIMEApplicationJSONCharsetUTF8)
	resp.Header.Set("Cache-Control", "no-store")
	body, err := json.Marshal(apierr.Body{Code: e.Code, Message: e.Message, RequestID: id})
	if err != nil { // unreachable: three strings always marshal
		body = []byte(`{"code":"INTERNAL","message":"internal error","requestId":""}`)
	}
	resp.SetBodyRaw(body)
}
