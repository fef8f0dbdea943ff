package legacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/internal/svcmetrics"
)

// Headers an old servlet container sends; they make the legacy look like
// the real thing to the gateway (which must strip or pass them knowingly).
const (
	serverHeader    = "Apache-Coyote/1.1"
	poweredByHeader = "Servlet 2.5; JBoss-5.0/JBossWeb-2.1"
	xmlContentType  = "text/xml; charset=UTF-8"
	htmlContentType = "text/html;charset=utf-8"
	requestIDHeader = "X-Request-ID"
	sessionCookie   = "JSESSIONID"
	maxFormBytes    = 64 << 10
)

// route is one servlet mapping: a path, the methods it accepts (GET implies
// HEAD) and whether fault injection may apply to it.
type route struct {
	path    string
	methods []string
	h       func(w http.ResponseWriter, r *http.Request) error
	admin   bool
}

func (s *Shop) routes() http.Handler {
	table := []route{
		{path: "/shop/catalog.do", methods: []string{http.MethodGet}, h: s.catalog},
		{path: "/shop/categories.do", methods: []string{http.MethodGet}, h: s.categoryList},
		{path: "/shop/productDetail.do", methods: []string{http.MethodGet}, h: s.productDetail},
		{path: "/shop/product.html", methods: []string{http.MethodGet}, h: s.productPage},
		{path: "/shop/placeOrder.do", methods: []string{http.MethodPost}, h: s.placeOrderHandler},
		{path: "/shop/orderStatus.do", methods: []string{http.MethodGet}, h: s.orderStatus},
		{path: "/shop/payOrder.do", methods: []string{http.MethodPost}, h: s.statusHandler(payTransition)},
		{path: "/shop/shipOrder.do", methods: []string{http.MethodPost}, h: s.statusHandler(shipTransition)},
		{path: "/shop/cancelOrder.do", methods: []string{http.MethodPost}, h: s.statusHandler(cancelTransition)},
		{path: "/shop/customerOrders.do", methods: []string{http.MethodGet}, h: s.customerOrders},
		{path: "/shop/export/orders.do", methods: []string{http.MethodGet}, h: s.exportOrders},
		{path: "/shop/export/products.do", methods: []string{http.MethodGet}, h: s.exportProducts},
		{path: "/shop/export/catalog.xml", methods: []string{http.MethodGet}, h: s.exportCatalog},
		{path: faultsPath, methods: []string{http.MethodGet, http.MethodPost, http.MethodDelete}, h: s.faultsAdmin, admin: true},
	}
	byPath := make(map[string]route, len(table))
	s.faults.known = map[string]bool{}
	for _, rt := range table {
		byPath[rt.path] = rt
		if !rt.admin {
			s.faults.known[rt.path] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, byPath)
	})
}

// recorder remembers the status and whether anything was written, so that
// a late error can still be reported properly, or the connection aborted
// when the response had already begun.
type recorder struct {
	http.ResponseWriter
	status  int
	written bool
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.written {
		rec.status, rec.written = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.written {
		rec.status, rec.written = http.StatusOK, true
	}
	return rec.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

type logKey struct{}

// logger returns the request-scoped logger (carrying the request id).
func (s *Shop) logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(logKey{}).(*slog.Logger); ok {
		return l
	}
	return s.log
}

func (s *Shop) serve(w http.ResponseWriter, r *http.Request, byPath map[string]route) {
	start := time.Now()
	reqID := r.Header.Get(requestIDHeader)
	if !validRequestID(reqID) {
		reqID = randomHex(8)
	}
	log := s.log.With("request_id", reqID)
	r = r.WithContext(context.WithValue(r.Context(), logKey{}, log))
	rec := &recorder{ResponseWriter: w}

	h := w.Header()
	h.Set("Server", serverHeader)
	h.Set("X-Powered-By", poweredByHeader)
	if c, err := r.Cookie(sessionCookie); err != nil || c.Value == "" {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: strings.ToUpper(randomHex(16)), Path: "/shop", HttpOnly: true})
	}

	handler := svcmetrics.Unmatched
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				log.WarnContext(r.Context(), "response aborted", "method", r.Method, "path", r.URL.Path)
				panic(p)
			}
			log.ErrorContext(r.Context(), "handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			if rec.written {
				panic(http.ErrAbortHandler)
			}
			writeErrorPage(rec, http.StatusInternalServerError, "")
		}
		s.reqlog.Request(r.Context(), rec.status, "method", r.Method, "path", r.URL.Path,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", reqID)
		s.metrics.request(handler, r.Method, rec.status, time.Since(start))
	}()

	rt, ok := byPath[r.URL.Path]
	if !ok {
		writeErrorPage(rec, http.StatusNotFound, r.URL.Path)
		return
	}
	handler = rt.path
	if !allowed(rt.methods, r.Method) {
		allow := slices.Clone(rt.methods)
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		rec.Header().Set("Allow", strings.Join(allow, ", "))
		writeErrorPage(rec, http.StatusMethodNotAllowed, "HTTP method "+r.Method+" is not supported by this URL")
		return
	}
	if !rt.admin && !s.applyFaults(rec, r, rt.path) {
		return
	}
	if err := rt.h(rec, r); err != nil {
		s.writeFailure(rec, r, err)
	}
}

func allowed(methods []string, m string) bool {
	return slices.Contains(methods, m) || (m == http.MethodHead && slices.Contains(methods, http.MethodGet))
}

// writeFailure answers a handler's error: a business error as HTTP 200 with
// <error code>, bad form encoding as 400, anything else as the container's
// 500 page. When the response has already started (a stream), the
// connection is cut so the client sees a truncated body, not a valid one.
func (s *Shop) writeFailure(rec *recorder, r *http.Request, err error) {
	log := s.logger(r.Context())
	var be *bizError
	var he *httpError
	switch {
	case rec.written:
		log.ErrorContext(r.Context(), "failed mid-response", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	case errors.As(err, &be):
		log.InfoContext(r.Context(), "business error", "path", r.URL.Path, "code", be.Code, "msg", be.Msg)
		writeXML(rec, xmlError{Code: be.Code, Msg: be.Msg})
	case errors.As(err, &he):
		writeErrorPage(rec, he.status, he.msg)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		log.InfoContext(r.Context(), "client gone", "path", r.URL.Path)
	default:
		log.ErrorContext(r.Context(), "internal error", "path", r.URL.Path, "err", err)
		writeErrorPage(rec, http.StatusInternalServerError, "")
	}
}

// httpError is a protocol-level failure (bad form encoding, unknown page)
// that an old container answers with an HTML status page, not XML.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.msg) }

// writeXML sends v as a complete XML document. Encoding errors cannot happen
// for the wire types; a write error means the client is gone.
func writeXML(w http.ResponseWriter, v any) {
	setXMLHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", " ")
	_ = enc.Encode(v)
	_, _ = io.WriteString(w, "\n")
}

func setXMLHeaders(h http.Header) {
	h.Set("Content-Type", xmlContentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")
}

var statusDescriptions = map[int]string{
	http.StatusBadRequest:            "The request sent by the client was syntactically incorrect.",
	http.StatusNotFound:              "The requested resource is not available.",
	http.StatusMethodNotAllowed:      "The specified HTTP method is not allowed for the requested resource.",
	http.StatusRequestEntityTooLarge: "The request entity is larger than the server is willing or able to process.",
	http.StatusInternalServerError:   "The server encountered an internal error that prevented it from fulfilling this request.",
	http.StatusServiceUnavailable:    "The requested service is not currently available.",
}

// writeErrorPage writes the servlet container's HTML error report.
func writeErrorPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", htmlContentType)
	w.Header().Del("Cache-Control")
	w.WriteHeader(status)
	var exception string
	if status == http.StatusInternalServerError {
		exception = `<p><b>exception</b> <pre>javax.servlet.ServletException: java.lang.NullPointerException
	de.kaufhaus.shop.web.ShopServlet.service(ShopServlet.java:212)
	javax.servlet.http.HttpServlet.service(HttpServlet.java:717)
</pre></p>`
	}
	fmt.Fprintf(w, `<html><head><title>JBossWeb/2.1.3.GA - Error report</title></head><body><h1>HTTP Status %d - %s</h1><HR size="1" noshade="noshade"><p><b>type</b> Status report</p><p><b>message</b> <u>%s</u></p><p><b>description</b> <u>%s</u></p>%s<HR size="1" noshade="noshade"><h3>JBossWeb/2.1.3.GA</h3></body></html>`,
		status, html.EscapeString(msg), html.EscapeString(msg), statusDescriptions[status], exception)
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
