package main

import (
	"context"

	"github.com/ficus-gw/ficus/newsvc/faults"
	"github.com/gofiber/fiber/v2"
)

// faultsAdminUsage is the --faults-admin flag's help.
const faultsAdminUsage = "serve fault injection for drills (demo only) on this loopback ip:port: GET, PUT, DELETE /admin/faults; empty: off"

// startFaults serves a new fault injector's admin handler on addr, a
// loopback ip:port (anything else is refused), and returns the middleware
// the service installs. addr "" turns fault injection off: nil, nil.
func startFaults(g *group, component, addr string, env *environment) (fiber.Handler, error) {
	if addr == "" {
		return nil, nil
	}
	if err := faults.CheckLoopback(addr); err != nil {
		return nil, usageError{err}
	}
	log := env.logger().With("component", component, "subsystem", "faults")
	in := faults.New(nil, log)
	ln, err := listen(component+" fault injection", addr)
	if err != nil {
		return nil, err
	}
	log.Info("fault injection admin listening (drills only)", "addr", ln.Addr().String(), "path", faults.AdminPath)
	g.Go(component+" fault injection", func(ctx context.Context) error {
		return serveHTTP(ctx, ln, in.AdminHandler(), log)
	})
	return in.Middleware(), nil
}
