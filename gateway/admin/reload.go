package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ReloadFunc re-reads and applies the configuration file on behalf of
// actor. It returns what changed, or a *ReloadRefused when the file was
// not applied (the running configuration keeps serving).
type ReloadFunc func(ctx context.Context, actor string) (ReloadResult, error)

// ReloadResult is the answer of POST /admin/reload.
type ReloadResult struct {
	// Changed lists what the reload changed (key paths); empty when the
	// file matched the running configuration.
	Changed []string `json:"changed"`
	// SHA256 is the digest of the file applied.
	SHA256 string `json:"sha256,omitempty"`
}

// ReloadRefused says why a configuration file was not applied.
type ReloadRefused struct {
	Problems []string
}

func (e *ReloadRefused) Error() string {
	return "configuration not reloaded; the running one keeps serving: " + strings.Join(e.Problems, "; ")
}

// Error codes of POST /admin/reload.
const (
	CodeReloadRefused     = "RELOAD_REFUSED"
	CodeReloadUnavailable = "RELOAD_UNAVAILABLE"
)

func (a *API) reloadConfig(c *fiber.Ctx, rc *reqCtx, _ string) error {
	if a.reload == nil {
		return a.fail(c, rc, http.StatusNotImplemented, CodeReloadUnavailable,
			"this gateway runs without a configuration file to reload (the demo's embedded configuration: start it with --config FILE)")
	}
	res, err := a.reload(c.UserContext(), rc.actor)
	var refused *ReloadRefused
	switch {
	case errors.As(err, &refused):
		return a.failDetails(c, rc, http.StatusUnprocessableEntity, CodeReloadRefused, refused.Error(), map[string]any{"problems": refused.Problems})
	case err != nil:
		return a.fail(c, rc, http.StatusInternalServerError, CodeInternal, err.Error())
	}
	if res.Changed == nil {
		res.Changed = []string{}
	}
	return c.JSON(res)
}

// Reload asks the gateway to re-read its configuration file.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var out ReloadResult
	err := c.do(ctx, http.MethodPost, "/reload", nil, &out)
	return out, err
}
