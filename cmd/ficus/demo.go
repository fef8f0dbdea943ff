package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/internal/pgtest"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/order"
)

func init() {
	register("demo", command{
		summary: "start the whole demo on loopback (legacy, new services, gateway)",
		usage: `
Usage: ficus demo [--data DIR] [--replicas N] [--print-config]

Starts every component on 127.0.0.1 with the embedded demo configuration and
SQLite files under DIR: the legacy shop (:8081), the Catalog (:8082) and
Order (:8083) services, the ACL backend serving /api/v1 from the legacy
(:8084), the dual-run sync, and the gateway (:8080, admin :8090). Prints where
everything listens; Ctrl-C stops everything cleanly. The legacy database is
seeded on first start; delete DIR to start over.

With --replicas N (N > 1) the demo runs a fleet: N gateway replicas (public
:8080, :8180, :8280, ...; admin :8090, :8190, :8290, ...) sharing one
PostgreSQL control plane, which the demo creates in DIR/postgres and starts
from the system's PostgreSQL binaries (Debian: apt-get install postgresql;
as root it runs them as the postgres user). A change through any replica's
admin API reaches every replica within a second.

With --print-config the embedded gateway configuration is printed and
nothing starts (a starting point for 'ficus gateway --config').

Examples:
  ficus demo --data data
  curl -i http://127.0.0.1:8080/shop/catalog.do?page=1
  ficus demo --print-config > ficus.yaml
  ficus demo --data data --replicas 3
  ficus ctl --admin http://127.0.0.1:8190 routes
`,
		run: func(ctx context.Context, args []string, env *environment) error {
			fs := newFlags("demo", env)
			data := fs.String("data", "data", "directory for the SQLite files")
			printCfg := fs.Bool("print-config", false, "print the embedded gateway configuration and exit")
			replicas := fs.Int("replicas", 1, "gateway replicas; more than 1 shares one PostgreSQL started in DIR/postgres")
			if err := parse(fs, args); err != nil {
				return err
			}
			if *printCfg {
				_, err := env.stdout.Write(config.DemoYAML())
				return err
			}
			if *replicas < 1 || *replicas > 9 {
				return usageError{fmt.Errorf("--replicas must be 1-9 (got %d)", *replicas)}
			}
			return runDemo(ctx, *data, *replicas, env)
		},
	})
}

// Demo addresses: fixed, so that the README's tour works as written.
const (
	demoLegacy  = "127.0.0.1:8081"
	demoCatalog = "127.0.0.1:8082"
	demoOrders  = "127.0.0.1:8083"
	demoACL     = "127.0.0.1:8084"
	// Fault injection of the new services (drills): loopback only, never
	// through the gateway.
	demoCatalogFaults = "127.0.0.1:8085"
	demoOrdersFaults  = "127.0.0.1:8086"
	// demoLegacyMetrics serves the legacy shop's /metrics: not on the
	// shop's port, which the gateway's default route forwards everything to.
	demoLegacyMetrics = "127.0.0.1:8087"
)

func runDemo(ctx context.Context, data string, replicas int, env *environment) error {
	cfg, err := config.Demo()
	if err != nil {
		return fmt.Errorf("embedded demo configuration: %w", err)
	}
	cfg.Admin.AuditDB = filepath.Join(data, "ficus-audit.db")
	cfg.ControlPlane.SQLite.Path = cfg.Admin.AuditDB
	cfg.Shadow.DB = filepath.Join(data, "ficus-shadow.db")
	cfg.Retire.DB = filepath.Join(data, "ficus-retire.db")
	cfg.Intents.DB = filepath.Join(data, "ficus-intents.db")
	cfg.Flags.File = filepath.Join(data, "flags.json")
	if err := writeIfAbsent(cfg.Flags.File, config.DemoFlags()); err != nil {
		return err
	}

	g := newGroup(ctx)
	var pgDSN string
	gateways := make([]*config.Config, 0, replicas)
	start := func() error {
		if err := startLegacy(g, demoLegacy, filepath.Join(data, "legacy.db"), demoLegacyMetrics, env); err != nil {
			return err
		}
		catalogFaults, err := startFaults(g, "catalog", demoCatalogFaults, env)
		if err != nil {
			return err
		}
		if err := startCatalog(g, demoCatalog, filepath.Join(data, "catalog.db"), env, func(c *catalog.Config) { c.Faults = catalogFaults }); err != nil {
			return err
		}
		ordersFaults, err := startFaults(g, "orders", demoOrdersFaults, env)
		if err != nil {
			return err
		}
		orders, err := startOrders(g, demoOrders, filepath.Join(data, "orders.db"), "http://"+demoCatalog, 0, env, func(c *order.Config) { c.Faults = ordersFaults })
		if err != nil {
			return err
		}
		if err := startACL(g, demoACL, filepath.Join(data, "acl.db"), "http://"+demoLegacy, env); err != nil {
			return err
		}
		if err := startSync(g, orders, filepath.Join(data, "sync.db"), "http://"+demoLegacy, "http://"+demoCatalog, "http://"+demoOrders, env); err != nil {
			return err
		}
		if replicas == 1 {
			gateways = append(gateways, cfg)
			_, err = startGateway(g, cfg, env)
			return err
		}
		pg, err := startDemoPostgres(g, filepath.Join(data, "postgres"))
		if err != nil {
			return err
		}
		pgDSN = pg.DSN("postgres")
		for i := range replicas {
			rc, err := config.Demo()
			if err != nil {
				return err
			}
			rc.Listen = fmt.Sprintf("127.0.0.1:%d", 8080+100*i)
			rc.Admin.Listen = fmt.Sprintf("127.0.0.1:%d", 8090+100*i)
			rc.ControlPlane.SQLite.Path = ""
			rc.ControlPlane.Postgres.DSN = pgDSN
			rc.Shadow.DB = filepath.Join(data, fmt.Sprintf("ficus-shadow-%d.db", i+1))
			rc.Retire.DB = filepath.Join(data, fmt.Sprintf("ficus-retire-%d.db", i+1))
			rc.Flags.File = cfg.Flags.File // one flag file shared by the fleet
			gateways = append(gateways, rc)
			if _, err := startGateway(g, rc, env); err != nil {
				return fmt.Errorf("gateway replica %d: %w", i+1, err)
			}
		}
		return nil
	}
	if err := start(); err != nil {
		g.cancel()
		_ = g.Wait()
		return err
	}
	token := ""
	for _, t := range cfg.Admin.Tokens {
		if len(t.Scopes) == 2 {
			token = t.Secret()
		}
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nFicus demo is up (data in %s/):\n", data)
	for i, rc := range gateways {
		name := "gateway"
		if replicas > 1 {
			name = fmt.Sprintf("gateway %d", i+1)
		}
		fmt.Fprintf(tw, "  %s\thttp://%s\tproxies every route (try /shop/catalog.do, /api/v1/products)\n", name, rc.Listen)
		fmt.Fprintf(tw, "  %s admin\thttp://%s\t/metrics /healthz /readyz /admin/routes (Authorization: Bearer %s)\n", name, rc.Admin.Listen, token)
	}
	if pgDSN != "" {
		fmt.Fprintf(tw, "  control plane\t%s\tPostgreSQL shared by every gateway replica (data in %s)\n", pgDSN, filepath.Join(data, "postgres"))
	}
	fmt.Fprintf(tw, "  legacy shop\thttp://%s\t/shop/catalog.do, fault injection at /shop/admin/faults (metrics: http://%s/metrics)\n", demoLegacy, demoLegacyMetrics)
	fmt.Fprintf(tw, "  catalog service\thttp://%s\t/openapi.yaml /api/v1/products /metrics\n", demoCatalog)
	fmt.Fprintf(tw, "  order service\thttp://%s\t/openapi.yaml /api/v1/orders /metrics\n", demoOrders)
	fmt.Fprintf(tw, "  ACL backend\thttp://%s\t/api/v1 served from the legacy, /metrics\n", demoACL)
	fmt.Fprintf(tw, "  catalog faults\thttp://%s\tPUT/DELETE /admin/faults: fault injection for drills (loopback only)\n", demoCatalogFaults)
	fmt.Fprintf(tw, "  order faults\thttp://%s\tPUT/DELETE /admin/faults: fault injection for drills (loopback only)\n", demoOrdersFaults)
	fmt.Fprintf(tw, "  dual-run sync\t\tbackfills legacy data into the new services, then follows both sides\n")
	_ = tw.Flush()
	fmt.Fprintln(env.stdout, "\nPress Ctrl-C to stop.")
	err = g.Wait()
	fmt.Fprintln(env.stdout, "Ficus demo stopped.")
	return err
}

// startDemoPostgres creates (first time) and starts the fleet's PostgreSQL
// in dir, and stops it when g ends.
func startDemoPostgres(g *group, dir string) (*pgtest.Server, error) {
	ctx, cancel := context.WithTimeout(g.ctx, 60*time.Second)
	defer cancel()
	pg, err := pgtest.Start(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("starting the demo's PostgreSQL (make run-fleet installs it): %w", err)
	}
	g.Defer(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pg.Stop(ctx)
	})
	return pg, nil
}

// writeIfAbsent creates path with b unless it exists (an operator may have
// edited it), atomically: the flag provider watches the file.
func writeIfAbsent(path string, b []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
