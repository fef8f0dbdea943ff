package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/acl/shadowmap"
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/admin"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/intent"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func init() {
	register("gateway", command{
		summary: "run the gateway with a configuration file",
		usage: `
Usage: ficus gateway --config FILE [--check]

Runs the strangler-fig gateway: the public listener proxies each request to
the legacy or the new side of its route; the admin listener serves /metrics,
/healthz, /readyz and the admin API (/admin/routes, /admin/audit, ...).
SIGTERM or Ctrl-C drains in-flight requests, then exits.

With --check the configuration is validated and nothing starts: exit status
0 when valid, 1 with every problem listed when not.

Examples:
  ficus demo --print-config > ficus.yaml   # start from the demo configuration
  ficus gateway --config ficus.yaml --check
  ficus gateway --config ficus.yaml
`,
		run: func(ctx context.Context, args []string, env *environment) error {
			fs := newFlags("gateway", env)
			path := fs.String("config", "", "configuration file (YAML; see docs/configuration.md)")
			check := fs.Bool("check", false, "validate the configuration and exit")
			if err := parse(fs, args); err != nil {
				return err
			}
			if *path == "" {
				return usageError{fmt.Errorf("--config FILE is required")}
			}
			cfg, err := config.Load(*path)
			if err != nil {
				return err
			}
			if cfg.Flags.File != "" && !filepath.IsAbs(cfg.Flags.File) {
				cfg.Flags.File = filepath.Join(filepath.Dir(*path), cfg.Flags.File)
			}
			if *check {
				fmt.Fprintf(env.stdout, "%s: valid (%d routes, %d upstreams)\n", *path, len(cfg.Routes), len(cfg.Upstreams))
				return nil
			}
			g := newGroup(ctx)
			if err := startGateway(g, cfg, env); err != nil {
				return err
			}
			return g.Wait()
		},
	})
}

// startGateway builds the gateway, its decision engine and admin API from
// cfg, and starts serving on cfg.Listen and cfg.Admin.Listen.
func startGateway(g *group, cfg *config.Config, env *environment) error {
	log := env.logger().With("component", "gateway")
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	provider, err := decide.NewProvider(cfg.Flags, log)
	if err != nil {
		return fmt.Errorf("starting the flag provider: %w", err)
	}
	engine, err := decide.NewEngine(cfg, provider, reg, log)
	if err != nil {
		return fmt.Errorf("starting the decision engine: %w", err)
	}
	g.Defer(func() { _ = engine.Close() })

	auditDB, err := sqlitedb.Open(cfg.Admin.AuditDB)
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	g.Defer(func() { _ = auditDB.Close() })

	retireDB, err := sqlitedb.Open(cfg.Retire.DB)
	if err != nil {
		return fmt.Errorf("opening the retirement tracker: %w", err)
	}
	g.Defer(func() { _ = retireDB.Close() })
	names := make([]string, 0, len(cfg.Routes)+1)
	for _, r := range cfg.Routes {
		names = append(names, r.Name)
	}
	names = append(names, cfg.DefaultRoute.Name) // the gateway's route order
	tracker, err := retire.New(g.ctx, retire.Options{
		Config: cfg.Retire, Routes: names, DB: retireDB, Registry: reg, Logger: log.With("subsystem", "retire"),
	})
	if err != nil {
		return fmt.Errorf("starting the retirement tracker: %w", err)
	}

	var gw *gateway.Gateway
	var shadowReport fiber.Handler // set once the gateway exists, before it serves
	api, err := admin.New(admin.Options{
		Engine:   engine,
		Breakers: func() map[string]string { return gw.Breakers() },
		Stats: func(route string) map[string]admin.BackendStats {
			out := map[string]admin.BackendStats{}
			for b, s := range gw.RouteStats(route) {
				out[b] = admin.BackendStats(s)
			}
			return out
		},
		Tokens:  cfg.Admin.Tokens,
		AuditDB: auditDB,
		Logger:  log.With("subsystem", "admin"),
		Reports: map[string]fiber.Handler{
			"retire": tracker.Handler(),
			"shadow": func(c *fiber.Ctx) error { return shadowReport(c) },
		},
	})
	if err != nil {
		return fmt.Errorf("starting the admin API: %w", err)
	}
	if n, err := api.RestoreState(g.ctx); err != nil {
		log.Warn("could not restore canary and pin changes from the audit log; the configuration's values apply", "err", err)
	} else if n > 0 {
		log.Info("restored route changes from the audit log", "routes", n)
	}
	mappings, err := shadowMappings(cfg)
	if err != nil {
		return err
	}
	ledger, err := openIntents(g, cfg, log)
	if err != nil {
		return err
	}
	gw, err = gateway.New(gateway.Options{
		Config:         cfg,
		Registry:       reg,
		Logger:         log,
		Decider:        engine,
		Admin:          api.Handler(),
		LegacyHits:     tracker,
		ShadowMappings: mappings,
		Intents:        ledger,
	})
	if err != nil {
		return fmt.Errorf("building the gateway: %w", err)
	}
	shadowReport = gw.Shadow().Handler()
	pub, err := listen("gateway", cfg.Listen)
	if err != nil {
		return err
	}
	adm, err := listen("gateway admin", cfg.Admin.Listen)
	if err != nil {
		_ = pub.Close()
		return err
	}
	log.Info("gateway listening", "addr", pub.Addr().String(), "admin", adm.Addr().String(), "routes", len(cfg.Routes))
	g.Go("gateway", func(ctx context.Context) error { return gw.Serve(ctx, pub, adm) })
	g.Go("retirement tracker", tracker.Run)
	return nil
}

// shadowMappings lets shadow traffic compare the legacy's own product detail
// (XML) with the new contract on routes whose legacy side speaks the legacy's
// formats: the one legacy format Ficus maps today. Other requests on such a
// route are counted as skipped, not compared.
func shadowMappings(cfg *config.Config) (map[string]shadow.Mapping, error) {
	var out map[string]shadow.Mapping
	for _, r := range cfg.Routes {
		if r.Shadow == nil || r.New == "" || cfg.Upstreams[r.Legacy].Kind != "legacy" {
			continue
		}
		tr, err := acl.NewTranslator(nil)
		if err != nil {
			return nil, fmt.Errorf("shadow mapping for route %s: %w", r.Name, err)
		}
		if out == nil {
			out = map[string]shadow.Mapping{}
		}
		out[r.Name] = shadowmap.ProductDetail{Translator: tr}
	}
	return out, nil
}

// openIntents opens the write-intent ledger when a route has write affinity
// and keeps it pruned; nil otherwise.
func openIntents(g *group, cfg *config.Config, log *slog.Logger) (intent.Ledger, error) {
	if !cfg.HasWriteAffinity() {
		return nil, nil
	}
	l, err := intent.OpenSQLite(g.ctx, cfg.Intents.DB)
	if err != nil {
		return nil, fmt.Errorf("opening the intent ledger: %w", err)
	}
	g.Defer(func() { _ = l.Close() })
	var ttl time.Duration
	for _, r := range cfg.Routes {
		if r.Affinity != nil {
			ttl = max(ttl, r.Affinity.TTL)
		}
	}
	g.Go("intent ledger pruning", func(ctx context.Context) error {
		return intent.RunPrune(ctx, l, ttl, time.Hour, time.Now, log.With("subsystem", "intents"))
	})
	return l, nil
}
