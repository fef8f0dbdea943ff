package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func newApp(fail error) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: Handler(slog.New(slog.DiscardHandler))})
	app.Use(RequestIDMiddleware(func() string { return "generated-1" }))
	app.Get("/", func(*fiber.Ctx) error { return fail })
	return app
}

func call(t *testing.T, app *fiber.App, reqID string) (int, Body, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/", nil)
	if reqID != "" {
		req.Header.Set(RequestIDHeader, reqID)
	}
	resp, err := app.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	var b Body
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("body %q is not the error model: %v", raw, err)
	}
	return resp.StatusCode, b, resp.Header.Get(fiber.HeaderRetryAfter)
}

func TestEveryErrorBecomesTheStructuredBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"business rule", New(CodeOutOfStock, "only %d left", 2), 422, CodeOutOfStock, ""},
		{"wrapped", fmt.Errorf("placing: %w", New(CodeIdempotencyReused, "x")), 409, CodeIdempotencyReused, ""},
		{"rate limited", &Error{Code: CodeRateLimited, Message: "slow down", RetryAfter: 3}, 429, CodeRateLimited, "3"},
		{"fiber 404", fiber.ErrNotFound, 404, CodeNotFound, ""},
		{"fiber 413", fiber.ErrRequestEntityTooLarge, 413, CodeTooLarge, ""},
		{"unknown code", &Error{Code: "SOMETHING_NEW", Message: "m"}, 500, "SOMETHING_NEW", ""},
		{"internal text never leaks", errors.New("dial tcp 10.0.0.7:5432: connection refused"), 500, CodeInternal, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, b, ra := call(t, newApp(tc.err), "")
			if status != tc.status || b.Code != tc.code || ra != tc.retryAfter {
				t.Fatalf("got %d %+v Retry-After=%q; want %d %s %q", status, b, ra, tc.status, tc.code, tc.retryAfter)
			}
			if b.RequestID != "generated-1" {
				t.Fatalf("requestId = %q, want the generated id", b.RequestID)
			}
			if strings.Contains(b.Message, "10.0.0.7") {
				t.Fatalf("internal error text reached the client: %q", b.Message)
			}
		})
	}
}

func TestRequestIDKeptOnlyWhenValid(t *testing.T) {
	t.Parallel()
	app := newApp(New(CodeNotFound, "no"))
	if _, b, _ := call(t, app, "abc-123.X_y"); b.RequestID != "abc-123.X_y" {
		t.Fatalf("a valid inbound id was replaced: %q", b.RequestID)
	}
	for _, bad := range []string{"has space", strings.Repeat("a", 129), "semi;colon", "ünïcode"} {
		if _, b, _ := call(t, app, bad); b.RequestID != "generated-1" {
			t.Fatalf("invalid id %q was kept: %q", bad, b.RequestID)
		}
	}
}

func TestDecodeJSONRefusesHostileBodies(t *testing.T) {
	t.Parallel()
	type item struct {
		Sku      string `json:"sku"`
		Quantity int    `json:"quantity"`
	}
	opts := DecodeOptions{MaxBytes: 256, MaxDepth: 4, Required: true}
	cases := []struct {
		name, body, ctype, code, field string
	}{
		{"ok", `{"sku":"A","quantity":1}`, "application/json; charset=utf-8", "", ""},
		{"empty", ` `, "application/json", CodeMalformed, ""},
		{"too large", `{"sku":"` + strings.Repeat("a", 300) + `"}`, "application/json", CodeTooLarge, ""},
		{"form", `sku=A`, "application/x-www-form-urlencoded", CodeUnsupportedMedia, ""},
		{"deep", `{"sku":[[[[["A"]]]]]}`, "application/json", CodeMalformed, ""},
		{"brackets in strings do not count", `{"sku":"[[[[[[","quantity":1}`, "application/json", "", ""},
		{"unknown field", `{"sku":"A","qty":1}`, "application/json", CodeMalformed, "qty"},
		{"wrong type", `{"sku":"A","quantity":"two"}`, "application/json", CodeMalformed, "quantity"},
		{"trailing data", `{"sku":"A"} {"sku":"B"}`, "application/json", CodeMalformed, ""},
		{"truncated", `{"sku":"A"`, "application/json", CodeMalformed, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v item
			err := DecodeJSON([]byte(tc.body), tc.ctype, opts, &v)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
			if tc.field != "" {
				if d, _ := ae.Details.(map[string]string); d["field"] != tc.field {
					t.Fatalf("details %v, want field %q", ae.Details, tc.field)
				}
			}
		})
	}
}

func TestJSONDepth(t *testing.T) {
	t.Parallel()
	cases := map[string]int{
		`1`:                         0,
		`{}`:                        1,
		`{"a":[1,{"b":2}]}`:         3,
		`{"a":"[[[[[[[[[[[[[[[[["}`: 1,   // brackets in strings do not count
		`{"a":"\"[[[["}`:            1,   // nor after an escaped quote
		`[[[[`:                      4,   // unbalanced: still measured
		strings.Repeat("[", 100):    100, // without recursion: no stack to blow
	}
	for in, want := range cases {
		if got := JSONDepth([]byte(in)); got != want {
			t.Errorf("JSONDepth(%.30q) = %d, want %d", in, got, want)
		}
	}
}
