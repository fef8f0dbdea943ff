package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ficus-gw/ficus/acl/backend"
	"github.com/ficus-gw/ficus/acl/dualrun"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/ficus-gw/ficus/legacy"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/order"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

func init() {
	register("legacy", command{
		summary: "run the simulated legacy shop (XML, RPC-style URLs, SQLite)",
		usage: `
Usage: ficus legacy [--listen ADDR] [--db FILE] [--metrics-listen ADDR]

Runs the legacy shop monolith: RPC-style URLs under /shop/, XML answers,
business errors inside HTTP 200, its own SQLite database (seeded on first
start) and a fault-injection admin endpoint at /shop/admin/faults.

With --metrics-listen ADDR its metrics are served at /metrics on a listener
of their own, never on the shop's port: a gateway's catch-all route forwards
every path there. Without it no metrics listener is opened (the demo opens
one on 127.0.0.1:8087).

Example:
  ficus legacy --listen 127.0.0.1:8081 --db data/legacy.db --metrics-listen 127.0.0.1:8087
  curl 'http://127.0.0.1:8081/shop/catalog.do?page=1'
  curl http://127.0.0.1:8087/metrics
`,
		run: func(ctx context.Context, args []string, env *environment) error {
			fs := newFlags("legacy", env)
			addr := fs.String("listen", "127.0.0.1:8081", "address to listen on")
			db := fs.String("db", filepath.Join("data", "legacy.db"), "SQLite file (created and seeded when absent)")
			metricsAddr := fs.String("metrics-listen", "", "address of the /metrics listener, e.g. 127.0.0.1:8087 (default: none)")
			if err := parse(fs, args); err != nil {
				return err
			}
			g := newGroup(ctx)
			if err := startLegacy(g, *addr, *db, *metricsAddr, env); err != nil {
				return err
			}
			return g.Wait()
		},
	})
	register("catalog", command{
		summary: "run the new Catalog service (JSON, OpenAPI, own SQLite)",
		usage: `
Usage: ficus catalog [--listen ADDR] [--db FILE] [--faults-admin ADDR] [--webhooks FILE] [--provider-states]

Runs the new Catalog service: GET /api/v1/products, /api/v1/products/{sku},
the event feed /api/v1/events and its contract at /openapi.yaml.

With --faults-admin 127.0.0.1:8085 (demo and drills only) a share of
answers can be made to fail, slowed or stopped at run time:
  curl -X PUT -H 'Content-Type: application/json' \
    -d '{"error_rate": 0.05, "path_prefix": "/api/v1/products"}' \
    http://127.0.0.1:8085/admin/faults
  curl -X DELETE http://127.0.0.1:8085/admin/faults
The address must be loopback; the faults endpoint is never served on the
service's own port, and so never through the gateway.

Example:
  ficus catalog --listen 127.0.0.1:8082 --db data/catalog.db
  curl http://127.0.0.1:8082/openapi.yaml
`,
		run: func(ctx context.Context, args []string, env *environment) error {
			fs := newFlags("catalog", env)
			addr := fs.String("listen", "127.0.0.1:8082", "address to listen on")
			db := fs.String("db", filepath.Join("data", "catalog.db"), "SQLite file (created when absent)")
			states := fs.Bool("provider-states", false, "serve POST /_pact/provider-states to loopback clients (Pact verification; test/demo only)")
			hooks := fs.String("webhooks", "", "YAML file of webhook subscriptions (docs/contracts.md, \"Webhooks from configuration\")")
			faultsAddr := fs.String("faults-admin", "", faultsAdminUsage)
			if err := parse(fs, args); err != nil {
				return err
			}
			subs, err := outbox.LoadSubscriptions(*hooks, os.LookupEnv, catalog.EventTypes(), 1)
			if err != nil {
				return err
			}
			g := newGroup(ctx)
			inject, err := startFaults(g, "catalog", *faultsAddr, env)
			if err == nil {
				err = startCatalog(g, *addr, *db, env, func(c *catalog.Config) { c.ProviderStates, c.Subscribers, c.Faults = *states, subs, inject })
			}
			if err != nil {
				g.cancel()
				return errors.Join(err, g.Wait())
			}
			return g.Wait()
		},
	})
	register("acl", command{
		summary: "serve the new /api/v1 contract from the legacy (anti-corruption backend)",
		usage: `
Usage: ficus acl [--listen ADDR] [--legacy URL] [--db FILE]

Runs the anti-corruption backend: /api/v1/products and /api/v1/orders answered
exactly as the new services answer them (same JSON, statuses, error codes and
idempotency), by calling the legacy shop. The gateway routes the legacy share
of /api/v1 traffic here, so clients see one contract whichever side serves.
Its SQLite file holds only idempotency records.

Example:
  ficus acl --listen 127.0.0.1:8084 --legacy http://127.0.0.1:8081 --db data/acl.db
  curl http://127.0.0.1:8084/api/v1/products/ART-1001
`,
		run: func(ctx context.Context, args []string, env *environment) error {
			fs := newFlags("acl", env)
			addr := fs.String("listen", backend.DefaultAddr, "address to listen on")
			legacyURL := fs.String("legacy", "http://127.0.0.1:8081", "base URL of the legacy shop")
			db := fs.String("db", filepath.Join("data", "acl.db"), "SQLite file for idempotency records")
			states := fs.Bool("provider-states", false, "serve POST /_pact/provider-states to loopback clients (Pact verification; test/demo only)")
			if err := parse(fs, args); err != nil {
				return err
			}
			g := newGroup(ctx)
			if err := startACL(g, *addr, *db, *legacyURL, env, func(c *backend.Config) { c.ProviderStates = *states }); err != nil {
				return err
			}
			return g.Wait()
		},
	})
	register("orders", command{
		summary: "run the new Order service (idempotent writes, outbox events)",
		usage: `
Usage: ficus orders [--listen ADDR] [--db FILE] [--catalog URL] [--legacy URL --sync-db FILE]
                   [--idempotency-lease 60s] [--faults-admin ADDR] [--webhooks FILE] [--provider-states]

Runs the new Order service: POST /api/v1/orders (Idempotency-Key required),
GET /api/v1/orders/{id}, cancel/pay/ship, the event feed /api/v1/events and
its contract at /openapi.yaml. Items are checked against the Catalog's API.

With --legacy the dual-run sync runs beside it: a backfill of the legacy's
products and orders into the Catalog and Order services (progress is
logged), then continuous sync from the legacy change feeds, and new-side
orders written back to the legacy. Checkpoints live in --sync-db.

With --faults-admin ADDR (a loopback ip:port; demo and drills only) fault
injection is served there, as for ficus catalog: PUT/DELETE /admin/faults.

Examples:
  ficus orders --listen 127.0.0.1:8083 --db data/orders.db --catalog http://127.0.0.1:8082
  ficus orders --legacy http://127.0.0.1:8081 --sync-db data/sync.db
`,
		run: func(ctx context.Context, args []string, env *environment) error {
			fs := newFlags("orders", env)
			addr := fs.String("listen", "127.0.0.1:8083", "address to listen on")
			db := fs.String("db", filepath.Join("data", "orders.db"), "SQLite file (created when absent)")
			cat := fs.String("catalog", "http://127.0.0.1:8082", "base URL of the Catalog service")
			legacyURL := fs.String("legacy", "", "base URL of the legacy shop; enables the dual-run sync")
			syncDB := fs.String("sync-db", filepath.Join("data", "sync.db"), "SQLite file of the sync's checkpoints (with --legacy)")
			lease := fs.Duration("idempotency-lease", 0, "how long an unfinished Idempotency-Key claim is held before a crash is assumed and it is repaired (default 60s)")
			states := fs.Bool("provider-states", false, "serve POST /_pact/provider-states to loopback clients (Pact verification; test/demo only)")
			hooks := fs.String("webhooks", "", "YAML file of webhook subscriptions (docs/contracts.md, \"Webhooks from configuration\")")
			faultsAddr := fs.String("faults-admin", "", faultsAdminUsage)
			if err := parse(fs, args); err != nil {
				return err
			}
			subs, err := outbox.LoadSubscriptions(*hooks, os.LookupEnv, order.EventTypes(), outbox.Latest(order.Upcasters()))
			if err != nil {
				return err
			}
			g := newGroup(ctx)
			inject, err := startFaults(g, "orders", *faultsAddr, env)
			var svc *order.Service
			if err == nil {
				svc, err = startOrders(g, *addr, *db, *cat, *lease, env, func(c *order.Config) { c.ProviderStates, c.Subscribers, c.Faults = *states, subs, inject })
			}
			if err != nil {
				g.cancel()
				return errors.Join(err, g.Wait())
			}
			if *legacyURL != "" {
				if err := startSync(g, svc, *syncDB, *legacyURL, *cat, "http://"+*addr, env); err != nil {
					g.cancel()
					return errors.Join(err, g.Wait())
				}
			}
			return g.Wait()
		},
	})
}

// startLegacy runs the shop on addr and, unless metricsAddr is empty, its
// /metrics on a listener of its own.
func startLegacy(g *group, addr, db, metricsAddr string, env *environment) error {
	log := env.logger() // the shop names itself in its log lines
	reg := svcmetrics.NewRegistry(version)
	shop, err := legacy.Open(g.ctx, legacy.Config{DBPath: db, Metrics: reg}, log)
	if err != nil {
		return fmt.Errorf("opening the legacy shop: %w", err)
	}
	ln, err := listen("legacy", addr)
	if err != nil {
		_ = shop.Close()
		return err
	}
	var mln net.Listener
	if metricsAddr != "" {
		if mln, err = listen("legacy metrics", metricsAddr); err != nil {
			_ = ln.Close()
			_ = shop.Close()
			return err
		}
	}
	log.Info("legacy shop listening", "addr", ln.Addr().String(), "db", db, "metrics", metricsAddr)
	g.Defer(func() { _ = shop.Close() })
	g.Go("legacy", func(ctx context.Context) error {
		return serveHTTP(ctx, ln, shop.Handler(), log)
	})
	if mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", svcmetrics.Handler(reg))
		g.Go("legacy metrics", func(ctx context.Context) error {
			return serveHTTP(ctx, mln, mux, log)
		})
	}
	return nil
}

func startCatalog(g *group, addr, db string, env *environment, opts ...func(*catalog.Config)) error {
	log := env.logger().With("component", "catalog")
	cfg := catalog.Config{DBPath: db, Metrics: svcmetrics.NewRegistry(version)}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := catalog.Open(g.ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("opening the catalog service: %w", err)
	}
	ln, err := listen("catalog", addr)
	if err != nil {
		_ = svc.Close()
		return err
	}
	log.Info("catalog service listening", "addr", ln.Addr().String(), "db", db)
	g.Go("catalog events", svc.Run)
	g.Defer(func() { _ = svc.Close() })
	g.Go("catalog", func(ctx context.Context) error {
		return serveFiber(ctx, ln, svc.App())
	})
	return nil
}

func startOrders(g *group, addr, db, catalogURL string, lease time.Duration, env *environment, opts ...func(*order.Config)) (*order.Service, error) {
	log := env.logger().With("component", "orders")
	cfg := order.Config{DBPath: db, CatalogURL: catalogURL, IdempotencyLease: lease, Metrics: svcmetrics.NewRegistry(version)}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := order.Open(g.ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("opening the order service: %w", err)
	}
	ln, err := listen("orders", addr)
	if err != nil {
		_ = svc.Close()
		return nil, err
	}
	log.Info("order service listening", "addr", ln.Addr().String(), "db", db, "catalog", catalogURL)
	g.Go("order events", svc.Run)
	g.Defer(func() { _ = svc.Close() })
	g.Go("orders", func(ctx context.Context) error {
		return serveFiber(ctx, ln, svc.App())
	})
	return svc, nil
}

// startACL serves the new contract from the legacy (the anti-corruption
// backend): the gateway routes the legacy share of /api/v1 traffic here.
func startACL(g *group, addr, db, legacyURL string, env *environment, opts ...func(*backend.Config)) error {
	log := env.logger().With("component", "acl")
	cfg := backend.Config{LegacyURL: legacyURL, DBPath: db, Metrics: svcmetrics.NewRegistry(version),
		CatalogOpenAPI: catalog.OpenAPI, OrderOpenAPI: []byte(order.OpenAPI())}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := backend.Open(g.ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("opening the ACL backend: %w", err)
	}
	ln, err := listen("acl", addr)
	if err != nil {
		_ = b.Close()
		return err
	}
	log.Info("ACL backend listening", "addr", ln.Addr().String(), "legacy", legacyURL, "db", db)
	g.Defer(func() { _ = b.Close() })
	g.Go("acl housekeeping", b.Run)
	g.Go("acl", func(ctx context.Context) error {
		return serveFiber(ctx, ln, b.App())
	})
	return nil
}

// startSync runs the dual-run sync: backfill, then continuous sync both ways.
func startSync(g *group, orders *order.Service, db, legacyURL, catalogURL, orderURL string, env *environment) error {
	log := env.logger().With("component", "sync")
	s, err := dualrun.Open(g.ctx, dualrun.Config{
		DBPath: db, LegacyURL: legacyURL, CatalogURL: catalogURL, OrderURL: orderURL, Orders: orders,
	}, log)
	if err != nil {
		return fmt.Errorf("opening the dual-run sync: %w", err)
	}
	g.Defer(func() { _ = s.Close() })
	g.Go("sync", s.Run)
	return nil
}
