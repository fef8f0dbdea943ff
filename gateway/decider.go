package gateway

import (
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/gofiber/fiber/v2"
)

// Decider picks the backend of a matched route. Implementations must not
// allocate. route is an index into cfg.Routes; len(cfg.Routes) is the
// default route. requestID is valid only during the call (copy it to keep
// it). Decide is only asked about routes that have a new upstream; other
// routes always go to legacy with reason default.
type Decider interface {
	Decide(c *fiber.Ctx, route int, requestID string) decide.Decision
}

// staticDecider is the built-in Decider used until a decision engine is
// wired: every route goes to legacy, except a route at canary 100 with a
// new upstream, which goes to new.
type staticDecider struct{ toNew []bool }

var _ Decider = staticDecider{}

func newStaticDecider(cfg *config.Config) staticDecider {
	d := staticDecider{toNew: make([]bool, len(cfg.Routes)+1)}
	for i, r := range append(cfg.Routes[:len(cfg.Routes):len(cfg.Routes)], cfg.DefaultRoute) {
		d.toNew[i] = r.New != "" && r.Canary >= 100
	}
	return d
}

func (d staticDecider) Decide(_ *fiber.Ctx, route int, _ string) decide.Decision {
	if route >= 0 && route < len(d.toNew) && d.toNew[route] {
		return decide.Decision{Backend: decide.New, Reason: decide.ReasonCanary}
	}
	return decide.Decision{Backend: decide.Legacy, Reason: decide.ReasonDefault}
}
