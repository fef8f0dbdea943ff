package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/rollout"
)

// Rollouts is what the API needs from the autopilot
// (*rollout.Controller implements it). Every command takes a route or
// cohort name and returns the state after it.
type Rollouts interface {
	Plan(name string) (rollout.Plan, bool)
	Cohorts() []string
	Status(ctx context.Context, name string) (rollout.Status, error)
	Start(ctx context.Context, name, actor, reason string) (rollout.State, error)
	Promote(ctx context.Context, name, actor, reason string) (rollout.State, error)
	Pause(ctx context.Context, name, actor, reason string) (rollout.State, error)
	Resume(ctx context.Context, name, actor, reason string) (rollout.State, error)
	Abort(ctx context.Context, name, actor, reason string) (rollout.State, error)
}

var _ Rollouts = (*rollout.Controller)(nil)

// Error codes of the rollout endpoints, besides the common ones. The
// autopilot's command errors (rollout.CommandError) are answered with their
// code upper-cased: NO_PLAN (404), ALREADY_RUNNING, NOT_IN_CANARY,
// NOT_RUNNING, NOT_RESUMABLE, FINISHED (409).
const (
	CodeNoPlan         = "NO_PLAN"
	CodeAlreadyRunning = "ALREADY_RUNNING"
	CodeNotInCanary    = "NOT_IN_CANARY"
	CodeNotRunning     = "NOT_RUNNING"
	CodeNotResumable   = "NOT_RESUMABLE"
	CodeFinished       = "FINISHED"
	// CodeNoAutopilot (404): this gateway runs no autopilot.
	CodeNoAutopilot = "NO_AUTOPILOT"
)

// Rollout commands, as the API path and the audit log name them.
const (
	RolloutStart   = "start"
	RolloutPromote = "promote"
	RolloutPause   = "pause"
	RolloutResume  = "resume"
	RolloutAbort   = "abort"
)

// RolloutStatus is a cohort's rollout as the API shows it: the autopilot's
// status (state, steps, time in step, condition, next action) with the
// plan's cohort, routes and evaluation interval, and the exit status
// `ficus ctl rollout status` ends with.
type RolloutStatus struct {
	rollout.Status
	Cohort string   `json:"cohort"`
	Routes []string `json:"routes"`
	// Interval between two evaluations, in nanoseconds.
	Interval time.Duration `json:"intervalNanos"`
	// ExitCode is Condition.ExitCode().
	ExitCode int `json:"exitCode"`
}

func (a *API) rolloutRoutes(r fiber.Router) {
	r.Get("/rollouts", a.endpoint(scopeRead, (*API).listRollouts))
	r.Get("/rollouts/:name", a.endpoint(scopeRead, (*API).rolloutStatus))
	for _, cmd := range []string{RolloutStart, RolloutPromote, RolloutPause, RolloutResume, RolloutAbort} {
		r.Post("/rollouts/:name/"+cmd, a.endpoint(scopeWrite, func(a *API, c *fiber.Ctx, rc *reqCtx, name string) error {
			return a.rolloutCommand(c, rc, name, cmd)
		}))
	}
}

func (a *API) noAutopilot(c *fiber.Ctx, rc *reqCtx) error {
	return a.fail(c, rc, http.StatusNotFound, CodeNoAutopilot, "this gateway runs no autopilot")
}

func (a *API) statusOf(ctx context.Context, name string) (RolloutStatus, error) {
	st, err := a.rollouts.Status(ctx, name)
	if err != nil {
		return RolloutStatus{}, err
	}
	p, _ := a.rollouts.Plan(name)
	return RolloutStatus{Status: st, Cohort: p.Cohort, Routes: p.Routes, Interval: p.Interval, ExitCode: st.Condition.ExitCode()}, nil
}

func (a *API) listRollouts(c *fiber.Ctx, rc *reqCtx, _ string) error {
	if a.rollouts == nil {
		return a.noAutopilot(c, rc)
	}
	ctx, cancel := dbContext()
	defer cancel()
	out := []RolloutStatus{}
	for _, cohort := range a.rollouts.Cohorts() {
		s, err := a.statusOf(ctx, cohort)
		if err != nil {
			return a.rolloutError(c, rc, cohort, "status", err)
		}
		out = append(out, s)
	}
	return c.JSON(out)
}

func (a *API) rolloutStatus(c *fiber.Ctx, rc *reqCtx, name string) error {
	if a.rollouts == nil {
		return a.noAutopilot(c, rc)
	}
	ctx, cancel := dbContext()
	defer cancel()
	s, err := a.statusOf(ctx, name)
	if err != nil {
		return a.rolloutError(c, rc, name, "status", err)
	}
	return c.JSON(s)
}

// rolloutCommand applies one operator command. The body is
// {"reason": "..."}; the reason is required, like every other change's.
func (a *API) rolloutCommand(c *fiber.Ctx, rc *reqCtx, name, cmd string) error {
	if a.rollouts == nil {
		return a.noAutopilot(c, rc)
	}
	reason, ok, err := a.reasonOnly(c, rc)
	if !ok {
		return err
	}
	ctx, cancel := dbContext()
	defer cancel()
	run := map[string]func(context.Context, string, string, string) (rollout.State, error){
		RolloutStart: a.rollouts.Start, RolloutPromote: a.rollouts.Promote, RolloutPause: a.rollouts.Pause,
		RolloutResume: a.rollouts.Resume, RolloutAbort: a.rollouts.Abort,
	}[cmd]
	st, err := run(ctx, name, rc.actor, reason)
	if err != nil {
		return a.rolloutError(c, rc, name, cmd, err)
	}
	// The command wrote the routes' percent and pin: make them live here
	// at once, as for every other change (other replicas follow).
	if err := a.syncer.Sync(ctx); err != nil {
		a.log.Warn("rollout command written; the re-read failed, the next sync applies it", "request_id", rc.id, "err", err)
	}
	a.log.Info("rollout command", "request_id", rc.id, "actor", rc.actor, "cohort", st.Cohort, "command", cmd,
		"phase", st.Phase, "percent", st.Percent, "state_version", st.Version, "reason", reason)
	s, err := a.statusOf(ctx, name)
	if err != nil {
		return a.rolloutError(c, rc, name, "status", err)
	}
	return c.JSON(s)
}

// rolloutError answers an autopilot error in the API's format.
func (a *API) rolloutError(c *fiber.Ctx, rc *reqCtx, name, cmd string, err error) error {
	var ce *rollout.CommandError
	switch {
	case errors.As(err, &ce):
		code := strings.ToUpper(ce.Code)
		status := http.StatusConflict
		if ce.Code == rollout.CodeNoPlan {
			status = http.StatusNotFound
		}
		a.log.Info("rollout command refused", "request_id", rc.id, "actor", rc.actor, "name", name, "command", cmd, "code", code)
		return a.fail(c, rc, status, code, ce.Message)
	case errors.Is(err, rollout.ErrConflict):
		return a.fail(c, rc, http.StatusConflict, CodeStateConflict,
			fmt.Sprintf("the rollout of %q changed while %s was applied (the autopilot or another operator moved it); look at its status and retry", name, cmd))
	case errors.Is(err, controlplane.ErrUnavailable):
		a.log.Error("rollout command failed: control plane unreachable", "request_id", rc.id, "name", name, "command", cmd, "err", err)
		return a.fail(c, rc, http.StatusServiceUnavailable, CodeControlPlaneUnavailable,
			fmt.Sprintf("the control plane (%s) is unreachable, so nothing was changed. Cause: %v", a.storeName, err))
	}
	a.log.Error("rollout command failed", "request_id", rc.id, "name", name, "command", cmd, "err", err)
	return a.fail(c, rc, http.StatusInternalServerError, CodeInternal, "rollout "+cmd+" failed; quote the requestId when reporting it")
}

// Rollouts returns every planned cohort's rollout status.
func (c *Client) Rollouts(ctx context.Context) ([]RolloutStatus, error) {
	var out []RolloutStatus
	return out, c.do(ctx, http.MethodGet, "/rollouts", nil, &out)
}

// Rollout returns the rollout status of a route or cohort.
func (c *Client) Rollout(ctx context.Context, name string) (RolloutStatus, error) {
	var out RolloutStatus
	return out, c.do(ctx, http.MethodGet, "/rollouts/"+url.PathEscape(name), nil, &out)
}

// RolloutCommand runs one of the RolloutStart... commands on a route or
// cohort and returns its status afterwards.
func (c *Client) RolloutCommand(ctx context.Context, name, cmd, reason string) (RolloutStatus, error) {
	var out RolloutStatus
	return out, c.do(ctx, http.MethodPost, "/rollouts/"+url.PathEscape(name)+"/"+cmd, map[string]any{"reason": reason}, &out)
}

// rolloutHint says what to do next about a rollout error code.
func rolloutHint(code string) string {
	switch code {
	case CodeNoPlan:
		return "give the route a plan (routes[].rollout in the config, see docs/configuration.md), or name a planned route: `ficus ctl rollout status`"
	case CodeAlreadyRunning:
		return "look at it with `ficus ctl rollout status ROUTE`; pause, resume or abort it instead"
	case CodeNotInCanary:
		return "promote approves a manual canary step; see where the rollout is with `ficus ctl rollout status ROUTE`"
	case CodeNotRunning, CodeNotResumable:
		return "see where the rollout is with `ficus ctl rollout status ROUTE`"
	case CodeFinished:
		return "the route is retired; nothing is left to roll out"
	case CodeNoAutopilot:
		return "the gateway was started without the autopilot"
	}
	return ""
}
