// Package providerstate serves the provider-state endpoint that Pact
// provider verification calls before each interaction (pact-verifier
// --state-change-url http://HOST:PORT/_pact/provider-states).
//
// It is test/demo machinery: a provider mounts it only when its
// configuration enables provider states, and even then it answers only
// requests from a loopback address. States put test data in place through
// the provider's own API, so what a consumer's pact verifies is the real
// code path.
package providerstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
)

// Path is where Mount serves the endpoint.
const Path = "/_pact/provider-states"

// Setup puts one state in place. params are the state's parameters from
// the pact (may be nil). It must be idempotent: the verifier sets the same
// state up before every interaction that names it.
type Setup func(ctx context.Context, params map[string]any) error

// States maps state names, as consumers write them in their pacts, to their
// setup.
type States map[string]Setup

// request is what pact-verifier posts: {"state","params","action"}.
type request struct {
	State  string         `json:"state"`
	Params map[string]any `json:"params"`
	Action string         `json:"action"`
}

// Mount serves POST Path on app. Requests from a non-loopback address get
// 404, as if the endpoint did not exist; an unknown state is 400
// VALIDATION_FAILED naming the known ones; a failed setup is 500 with the
// cause in the message (this is test tooling: the verifier prints it).
func Mount(app fiber.Router, states States, log *slog.Logger) {
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	app.Post(Path, func(c *fiber.Ctx) error {
		if !c.Context().RemoteIP().IsLoopback() {
			return apierr.New(apierr.CodeNotFound, "no such resource")
		}
		var req request
		// Tolerant on purpose: verifiers may send fields of their own.
		if err := json.Unmarshal(c.Body(), &req); err != nil {
			return apierr.New(apierr.CodeMalformed, "body must be {\"state\",\"params\",\"action\"}: %v", err)
		}
		if req.Action == "teardown" {
			return c.SendStatus(fiber.StatusNoContent)
		}
		setup, ok := states[req.State]
		if !ok {
			return apierr.New(apierr.CodeValidation, "unknown provider state %q; known: %s", req.State, strings.Join(names, "; "))
		}
		if err := setup(c.UserContext(), req.Params); err != nil {
			log.Error("provider state failed", "state", req.State, "err", err, "request_id", apierr.RequestID(c))
			return &apierr.Error{Code: apierr.CodeInternal, Message: "provider state " + req.State + ": " + err.Error()}
		}
		log.Info("provider state set up", "state", req.State, "request_id", apierr.RequestID(c))
		return c.SendStatus(fiber.StatusNoContent)
	})
}

// String returns params[key] when it is a non-empty string, else def.
func String(params map[string]any, key, def string) string {
	if s, ok := params[key].(string); ok && s != "" {
		return s
	}
	return def
}

// ErrNotSatisfiable reports a state the provider cannot put in place (e.g.
// the legacy has no such product and cannot be given one).
var ErrNotSatisfiable = errors.New("state cannot be set up on this provider")

// Call sends one request to app in process (fiber's App.Test), so a state
// goes through the same handlers, validation and transactions as a client.
// It returns the status and body.
func Call(app *fiber.App, method, path string, header map[string]string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := app.Test(req, 10_000)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// Expect turns an unexpected status of Call into an error.
func Expect(status int, body []byte, err error, want ...int) error {
	if err != nil {
		return err
	}
	for _, w := range want {
		if status == w {
			return nil
		}
	}
	return fmt.Errorf("answered %d: %.300s", status, body)
}

// Int returns params[key] as an int when it is a number, else def.
func Int(params map[string]any, key string, def int) int {
	if f, ok := params[key].(float64); ok {
		return int(f)
	}
	return def
}
