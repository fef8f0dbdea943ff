package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
Usage: ficus demo [--data DIR] [--config FILE] [--replicas N] [--port-offset N]
                  [--print-config] [--check]

Starts every component on 127.0.0.1 with the embedded demo configuration and
SQLite files under DIR: the legacy shop (:8081), the Catalog (:8082) and
Order (:8083) services, the ACL backend serving /api/v1 from the legacy
(:8084), the dual-run sync, and the gateway (:8080, admin :8090). Prints where
everything listens; Ctrl-C stops everything cleanly. The legacy database is
seeded on first start; delete DIR to start over.

With --config FILE the gateway runs with that configuration instead of the
embedded one (start from --print-config and edit it; its paths are used as
written, a relative flags.file is relative to FILE's directory and is
created with the demo flags when absent). The configuration is validated
first, flag file included; an invalid one starts nothing.

With --replicas N (N > 1) the demo runs a fleet: N gateway replicas (public
:8080, :8180, :8280, ...; admin :8090, :8190, :8290, ...) sharing one
PostgreSQL control plane, which the demo creates in DIR/postgres and starts
from the system's PostgreSQL binaries (Debian: apt-get install postgresql;
as root it runs them as the postgres user). A change through any replica's
admin API reaches every replica within a second.

--port-offset N moves every port of the demo by N (8080 becomes 8080+N, in
the gateway configuration's listeners and upstream URLs too): two demos on
one machine, or a demo beside something that holds 8080.

With --print-config the embedded gateway configuration is printed and
nothing starts; the flag file it names (DIR/flags.json) is written when
absent, so that the printed file runs unchanged with 'ficus gateway
--config' or 'ficus demo --config'. With --check the configuration (the
embedded one, or --config FILE) and its flag file are validated: exit
status 0 when valid, 1 with every problem listed.

Examples:
  ficus demo --data data
  curl -i http://127.0.0.1:8080/shop/catalog.do?page=1
  ficus demo --print-config > ficus.yaml
  ficus demo --config ficus.yaml --check
  ficus demo --config ficus.yaml
  ficus demo --data data --replicas 3
  ficus ctl --admin http://127.0.0.1:8190 routes
`,
		run: func(ctx context.Context, args []string, env *environment) error {
			fs := newFlags("demo", env)
			o := demoOptions{}
			fs.StringVar(&o.data, "data", "data", "directory for the SQLite files")
			fs.StringVar(&o.config, "config", "", "gateway configuration file (default: the embedded demo configuration)")
			printCfg := fs.Bool("print-config", false, "print the embedded gateway configuration and exit")
			check := fs.Bool("check", false, "validate the configuration and its flag file, and exit")
			fs.IntVar(&o.replicas, "replicas", 1, "gateway replicas; more than 1 shares one PostgreSQL started in DIR/postgres")
			fs.IntVar(&o.portOffset, "port-offset", 0, "add N to every port of the demo")
			if err := parse(fs, args); err != nil {
				return err
			}
			if *printCfg {
				return printDemoConfig(env, o.data)
			}
			if o.replicas < 1 || o.replicas > 9 {
				return usageError{fmt.Errorf("--replicas must be 1-9 (got %d)", o.replicas)}
			}
			if o.portOffset < 0 || o.portOffset > 50000 {
				return usageError{fmt.Errorf("--port-offset must be 0-50000 (got %d)", o.portOffset)}
			}
			if *check {
				cfg, err := o.gatewayConfig(0)
				if err != nil {
					return err
				}
				name := o.config
				if name == "" {
					name = "embedded demo configuration"
				}
				if err := writeIfAbsent(cfg.Flags.File, config.DemoFlags()); err != nil {
					return err
				}
				return reportCheck(env.stdout, name, cfg)
			}
			return runDemo(ctx, o, env)
		},
	})
}

// demoOptions are the demo's command line.
type demoOptions struct {
	data       string
	config     string // "": the embedded configuration
	replicas   int
	portOffset int
}

// Demo ports: fixed (moved only by --port-offset), so that the README's
// tour works as written.
const (
	demoLegacyPort  = 8081
	demoCatalogPort = 8082
	demoOrdersPort  = 8083
	demoACLPort     = 8084
	// Fault injection of the new services (drills): loopback only, never
	// through the gateway.
	demoCatalogFaultsPort = 8085
	demoOrdersFaultsPort  = 8086
	// demoLegacyMetricsPort serves the legacy shop's /metrics: not on the
	// shop's port, which the gateway's default route forwards everything to.
	demoLegacyMetricsPort = 8087
)

func (o demoOptions) addr(port int) string {
	return fmt.Sprintf("127.0.0.1:%d", port+o.portOffset)
}

// printDemoConfig prints the embedded configuration with its data paths in
// data, and writes the flag file it names when absent.
func printDemoConfig(env *environment, data string) error {
	text := config.DemoYAML()
	if data != "data" {
		text = bytes.ReplaceAll(text, []byte(": data/"), []byte(": "+filepath.ToSlash(data)+"/"))
	}
	flags := filepath.Join(data, "flags.json")
	if _, err := os.Stat(flags); err != nil {
		if err := writeIfAbsent(flags, config.DemoFlags()); err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "wrote the demo flags to %s (the printed configuration's flags.file)\n", flags)
	}
	_, err := env.stdout.Write(text)
	return err
}

// gatewayConfig is the configuration of gateway replica i (0-based): the
// --config file or the embedded one, with the demo's paths and ports.
func (o demoOptions) gatewayConfig(i int) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if o.config != "" {
		if cfg, err = config.Load(o.config); err != nil {
			return nil, err
		}
		resolveFlagFile(cfg, o.config)
	} else {
		if cfg, err = config.Demo(); err != nil {
			return nil, fmt.Errorf("embedded demo configuration: %w", err)
		}
		cfg.Admin.AuditDB = filepath.Join(o.data, "ficus-audit.db")
		cfg.ControlPlane.SQLite.Path = cfg.Admin.AuditDB
		cfg.Shadow.DB = filepath.Join(o.data, "ficus-shadow.db")
		cfg.Retire.DB = filepath.Join(o.data, "ficus-retire.db")
		cfg.Intents.DB = filepath.Join(o.data, "ficus-intents.db")
		cfg.Flags.File = filepath.Join(o.data, "flags.json")
	}
	if err := shiftPorts(cfg, o.portOffset+100*i); err != nil {
		return nil, err
	}
	if i > 0 || o.replicas > 1 {
		// Upstreams stay where the demo runs them; only listeners move per replica.
		for name, u := range cfg.Upstreams {
			u.URL, _ = shiftURL(u.URL, -100*i)
			cfg.Upstreams[name] = u
		}
	}
	return cfg, nil
}

// shiftPorts adds off to the port of every loopback listener and upstream
// URL of cfg that is one of the demo's (8000-8999).
func shiftPorts(cfg *config.Config, off int) error {
	if off == 0 {
		return nil
	}
	var err error
	if cfg.Listen, err = shiftAddr(cfg.Listen, off); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.Admin.Listen, err = shiftAddr(cfg.Admin.Listen, off); err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	for name, u := range cfg.Upstreams {
		if u.URL, err = shiftURL(u.URL, off); err != nil {
			return fmt.Errorf("upstreams.%s.url: %w", name, err)
		}
		cfg.Upstreams[name] = u
	}
	return nil
}

func shiftAddr(addr string, off int) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 8000 || p > 8999 {
		return addr, nil // not one of the demo's ports
	}
	return net.JoinHostPort(host, strconv.Itoa(p+off)), nil
}

func shiftURL(raw string, off int) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Host, err = shiftAddr(u.Host, off); err != nil {
		return "", err
	}
	return u.String(), nil
}

func runDemo(ctx context.Context, o demoOptions, env *environment) error {
	data, replicas := o.data, o.replicas
	cfg, err := o.gatewayConfig(0)
	if err != nil {
		return err
	}
	if err := writeIfAbsent(cfg.Flags.File, config.DemoFlags()); err != nil {
		return err
	}
	if o.config != "" {
		if ps := checkFlags(cfg); len(ps) > 0 {
			return fmt.Errorf("%s: %s", o.config, strings.Join(ps, "; "))
		}
	}
	legacyAddr, catalogAddr, ordersAddr, aclAddr := o.addr(demoLegacyPort), o.addr(demoCatalogPort), o.addr(demoOrdersPort), o.addr(demoACLPort)
	logDir := filepath.Join(data, "logs")
	logs, err := newDemoLogs(logDir, env)
	if err != nil {
		return err
	}
	defer logs.Close()
	env = &environment{stdout: env.stdout, stderr: env.stderr, logLevel: env.logLevel, logFormat: env.logFormat, files: logs}

	g := newGroup(ctx)
	var pgDSN string
	gateways := make([]*config.Config, 0, replicas)
	start := func() error {
		if err := startLegacy(g, legacyAddr, filepath.Join(data, "legacy.db"), o.addr(demoLegacyMetricsPort), env); err != nil {
			return err
		}
		catalogFaults, err := startFaults(g, "catalog", o.addr(demoCatalogFaultsPort), env)
		if err != nil {
			return err
		}
		if err := startCatalog(g, catalogAddr, filepath.Join(data, "catalog.db"), env, func(c *catalog.Config) { c.Faults = catalogFaults }); err != nil {
			return err
		}
		ordersFaults, err := startFaults(g, "orders", o.addr(demoOrdersFaultsPort), env)
		if err != nil {
			return err
		}
		orders, err := startOrders(g, ordersAddr, filepath.Join(data, "orders.db"), "http://"+catalogAddr, 0, env, func(c *order.Config) { c.Faults = ordersFaults })
		if err != nil {
			return err
		}
		if err := startACL(g, aclAddr, filepath.Join(data, "acl.db"), "http://"+legacyAddr, env); err != nil {
			return err
		}
		if err := startSync(g, orders, filepath.Join(data, "sync.db"), "http://"+legacyAddr, "http://"+catalogAddr, "http://"+ordersAddr, env); err != nil {
			return err
		}
		if replicas == 1 {
			gateways = append(gateways, cfg)
			_, err = startGateway(g, cfg, env, o.reloadable(0, nil)...)
			return err
		}
		pg, err := startDemoPostgres(g, filepath.Join(data, "postgres"))
		if err != nil {
			return err
		}
		pgDSN = pg.DSN("postgres")
		for i := range replicas {
			rc, err := o.gatewayConfig(i)
			if err != nil {
				return err
			}
			fleet := func(rc *config.Config) {
				rc.ControlPlane.SQLite.Path = ""
				rc.ControlPlane.Postgres.DSN = pgDSN
				rc.Shadow.DB = filepath.Join(data, fmt.Sprintf("ficus-shadow-%d.db", i+1))
				rc.Retire.DB = filepath.Join(data, fmt.Sprintf("ficus-retire-%d.db", i+1))
				rc.Flags.File = cfg.Flags.File // one flag file shared by the fleet
			}
			fleet(rc)
			gateways = append(gateways, rc)
			if _, err := startGateway(g, rc, env, o.reloadable(i, fleet)...); err != nil {
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
		fmt.Fprintf(tw, "  %s\t%s://%s\tproxies every route (try /shop/catalog.do, /api/v1/products)\n", name, scheme(rc.TLS), rc.Listen)
		fmt.Fprintf(tw, "  %s admin\t%s://%s\t/metrics /healthz /readyz /admin/routes (Authorization: Bearer %s)\n", name, scheme(rc.Admin.TLS), rc.Admin.Listen, token)
	}
	if pgDSN != "" {
		fmt.Fprintf(tw, "  control plane\t%s\tPostgreSQL shared by every gateway replica (data in %s)\n", pgDSN, filepath.Join(data, "postgres"))
	}
	fmt.Fprintf(tw, "  legacy shop\thttp://%s\t/shop/catalog.do, fault injection at /shop/admin/faults (metrics: http://%s/metrics)\n", legacyAddr, o.addr(demoLegacyMetricsPort))
	fmt.Fprintf(tw, "  catalog service\thttp://%s\t/openapi.yaml /api/v1/products /metrics\n", catalogAddr)
	fmt.Fprintf(tw, "  order service\thttp://%s\t/openapi.yaml /api/v1/orders /metrics\n", ordersAddr)
	fmt.Fprintf(tw, "  ACL backend\thttp://%s\t/api/v1 served from the legacy, /metrics\n", aclAddr)
	fmt.Fprintf(tw, "  catalog faults\thttp://%s\tPUT/DELETE /admin/faults: fault injection for drills (loopback only)\n", o.addr(demoCatalogFaultsPort))
	fmt.Fprintf(tw, "  order faults\thttp://%s\tPUT/DELETE /admin/faults: fault injection for drills (loopback only)\n", o.addr(demoOrdersFaultsPort))
	fmt.Fprintf(tw, "  dual-run sync\t\tbackfills legacy data into the new services, then follows both sides\n")
	fmt.Fprintf(tw, "  logs\t%s/\tone file per component (--log-level %s); warnings and errors also show here\n", logDir, strings.ToLower(env.logLevel.Level().String()))
	_ = tw.Flush()
	fmt.Fprintln(env.stdout, "\nPress Ctrl-C to stop.")
	err = g.Wait()
	fmt.Fprintln(env.stdout, "Ficus demo stopped.")
	return err
}

// reloadable lets replica i reload --config FILE (SIGHUP, POST
// /admin/reload), loaded as the demo loads it and changed by fix (the
// fleet's per-replica settings; may be nil); the embedded configuration
// does not reload.
func (o demoOptions) reloadable(i int, fix func(*config.Config)) []gatewayOption {
	if o.config == "" {
		return nil
	}
	return []gatewayOption{reloadableFrom(o.config, func() (*config.Config, error) {
		c, err := o.gatewayConfig(i)
		if err == nil && fix != nil {
			fix(c)
		}
		return c, err
	})}
}

func scheme(t config.TLS) string {
	if t.Enabled() {
		return "https"
	}
	return "http"
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
