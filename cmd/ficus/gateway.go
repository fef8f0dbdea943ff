package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/acl/shadowmap"
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/admin"
	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/intent"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/ficus-gw/ficus/internal/pgdb"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register("gateway", command{
		summary: "run the gateway with a configuration file",
		usage: `
Usage: ficus gateway --config FILE [--check]

Runs the strangler-fig gateway: the public listener proxies each request to
the legacy or the new side of its route; the admin listener serves /metrics,
/healthz, /readyz and the admin API (/admin/routes, /admin/audit, ...).
SIGTERM or Ctrl-C drains in-flight requests, then exits. SIGHUP (or POST
/admin/reload) re-reads FILE and applies it at once, all or nothing: routes'
paths, methods, timeouts, retries and rate limits, and upstreams' URLs,
timeouts and breakers; an invalid file, or one that changes what needs a
restart, is refused with every reason and the running configuration keeps
serving. Each applied reload is audited.

With --check the configuration is validated and nothing starts: exit status
0 when valid, 1 with every problem listed when not. The flag file is
checked too: it must parse as the gateway would serve it, and define every
flag a route names.

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
			resolveFlagFile(cfg, *path)
			if *check {
				return reportCheck(env.stdout, *path, cfg)
			}
			g := newGroup(ctx)
			load := func() (*config.Config, error) {
				c, err := config.Load(*path)
				if err == nil {
					resolveFlagFile(c, *path)
				}
				return c, err
			}
			if _, err := startGateway(g, cfg, env, reloadableFrom(*path, load)); err != nil {
				return err
			}
			return g.Wait()
		},
	})
}

// replica is one running gateway, as the demo and tests see it.
type replica struct {
	gw     *gateway.Gateway
	engine *decide.Engine
	api    *admin.API
	cp     *controlPlane
	// pub and adm are the addresses actually listened on (cfg may say
	// port 0).
	pub, adm string
}

// startGateway builds the gateway, its decision engine and admin API from
// cfg, and starts serving on cfg.Listen and cfg.Admin.Listen.
func startGateway(g *group, cfg *config.Config, env *environment, options ...gatewayOption) (*replica, error) {
	var gopts gatewayOptions
	for _, o := range options {
		o(&gopts)
	}
	log := env.logger().With("component", "gateway")
	reg := svcmetrics.NewRegistry(version) // ficus_build_info, Go runtime, process

	cp, err := openControlPlane(g, cfg, reg, log.With("subsystem", "controlplane"))
	if err != nil {
		return nil, err
	}
	flagsCfg, flagFile, err := openFlagFile(g, cfg, cp, reg, log)
	if err != nil {
		return nil, err
	}
	provider, err := newFlagProvider(flagsCfg, log)
	if err != nil {
		return nil, fmt.Errorf("starting the flag provider: %w", err)
	}
	engine, err := decide.NewEngine(cfg, provider, reg, log)
	if err != nil {
		return nil, fmt.Errorf("starting the decision engine: %w", err)
	}
	g.Defer(func() { _ = engine.Close() })

	retireDB, err := sqlitedb.Open(cfg.Retire.DB)
	if err != nil {
		return nil, fmt.Errorf("opening the retirement tracker: %w", err)
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
		return nil, fmt.Errorf("starting the retirement tracker: %w", err)
	}

	var gw *gateway.Gateway
	var shadowReport fiber.Handler // set once the gateway exists, before it serves
	var apiRef *admin.API          // set once the admin API exists, before the autopilot runs
	autopilot, err := newAutopilot(g, cfg, reg, cp, tracker, func(ctx context.Context) { _ = apiRef.Syncer().Sync(ctx) }, log.With("subsystem", "autopilot"))
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	reloader := newConfigReloader(gopts, cp.store, log.With("subsystem", "reload"), host+" (admin "+cfg.Admin.Listen+")")
	var reload admin.ReloadFunc
	if reloader != nil {
		reload = reloader.Reload
	}
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
		Tokens:       cfg.Admin.Tokens,
		Store:        cp.store,
		StoreName:    cp.name,
		SyncInterval: cfg.ControlPlane.SyncInterval,
		StateCache:   cfg.ControlPlane.Postgres.Cache,
		Registry:     reg,
		Leader:       cp.leader,
		Flags:        flagsStatus(cfg, flagFile),
		Logger:       log.With("subsystem", "admin"),
		Reports: map[string]fiber.Handler{
			"retire": tracker.Handler(),
			"shadow": func(c *fiber.Ctx) error { return shadowReport(c) },
		},
		Rollouts: autopilot,
		Reload:   reload,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the admin API: %w", err)
	}
	apiRef = api
	rctx, cancel := context.WithTimeout(g.ctx, 15*time.Second)
	err = api.Restore(rctx)
	cancel()
	if err != nil {
		return nil, err
	}
	mappings, err := shadowMappings(cfg)
	if err != nil {
		return nil, err
	}
	ledger, err := openIntents(g, cfg, cp.pool, log)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("building the gateway: %w", err)
	}
	shadowReport = gw.Shadow().Handler()
	if reloader != nil {
		reloader.gw = gw
		g.Go("configuration reload on SIGHUP", reloader.onSIGHUP)
	}
	pub, err := listen("gateway", cfg.Listen)
	if err != nil {
		return nil, err
	}
	adm, err := listen("gateway admin", cfg.Admin.Listen)
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	log.Info("gateway listening", "addr", pub.Addr().String(), "admin", adm.Addr().String(), "routes", len(cfg.Routes))
	g.Go("gateway", func(ctx context.Context) error { return gw.Serve(ctx, pub, adm) })
	g.Go("retirement tracker", tracker.Run)
	g.Go("control plane sync", api.Run)
	g.Go("leader election", cp.leader.Run)
	runAutopilot(g, autopilot, cfg.Autopilot.Tick)
	return &replica{gw: gw, engine: engine, api: api, cp: cp, pub: pub.Addr().String(), adm: adm.Addr().String()}, nil
}

// openFlagFile puts a FlagFile between the configured flag file and the
// provider (only valid files are served; every accepted reload is
// audited with actor "flags-file") and returns the flags configuration
// the provider must use. Without a flag file it changes nothing.
func openFlagFile(g *group, cfg *config.Config, cp *controlPlane, reg *prometheus.Registry, log *slog.Logger) (config.Flags, *decide.FlagFile, error) {
	if cfg.Flags.File == "" {
		return cfg.Flags, nil, nil
	}
	host, _ := os.Hostname()
	replicaName := host + " (admin " + cfg.Admin.Listen + ")"
	ff, err := decide.OpenFlagFile(decide.FlagFileOptions{
		Path: cfg.Flags.File, Registry: reg, Logger: log.With("subsystem", "flags"),
		OnReload: func(r decide.FlagReload) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			old, _ := json.Marshal(map[string]any{"sha256": r.OldSHA})
			nw, _ := json.Marshal(map[string]any{"sha256": r.NewSHA, "changed": r.Changed})
			_, err := cp.store.Record(ctx, controlplane.AuditEntry{
				Actor: "flags-file", Field: controlplane.FieldFlags, Old: old, New: nw,
				Reason: fmt.Sprintf("flag file %s reloaded by replica %s; changed: %s", r.Path, replicaName, strings.Join(r.Changed, ", ")),
			})
			if err != nil {
				log.Warn("flag file reload not audited: control plane unavailable", "path", r.Path, "new_sha256", r.NewSHA, "err", err)
			}
		},
	})
	if err != nil {
		return config.Flags{}, nil, fmt.Errorf("starting the flag provider: %w", err)
	}
	g.Defer(func() { _ = ff.Close() })
	g.Go("flag file", ff.Run)
	return config.Flags{File: ff.ServingPath()}, ff, nil
}

// flagsStatus reports the flag source for the admin status.
func flagsStatus(cfg *config.Config, ff *decide.FlagFile) func() admin.FlagsStatus {
	return func() admin.FlagsStatus {
		if ff == nil {
			return admin.FlagsStatus{Source: cfg.Flags.Flagd}
		}
		st := ff.Status()
		return admin.FlagsStatus{Source: st.Path, SHA256: st.SHA256, LoadedAt: st.LoadedAt,
			ReloadErrors: st.ReloadErrors, LastError: st.LastError, LastErrorAt: st.LastErrorAt}
	}
}

// controlPlane is the opened store and its leader election.
type controlPlane struct {
	store  controlplane.Store
	name   string // "sqlite" or "postgres"
	leader *controlplane.Elector
	pool   *pgxpool.Pool // nil for SQLite
}

// openControlPlane opens the store cfg.ControlPlane names: PostgreSQL
// when a DSN is configured, else the SQLite file. Everything opened is
// closed when g ends.
func openControlPlane(g *group, cfg *config.Config, reg *prometheus.Registry, log *slog.Logger) (*controlPlane, error) {
	ctx, cancel := context.WithTimeout(g.ctx, 15*time.Second)
	defer cancel()
	cp := &controlPlane{}
	if pg := cfg.ControlPlane.Postgres; pg.Enabled() {
		dsn := pg.ResolveDSN()
		if dsn == "" {
			return nil, fmt.Errorf("controlPlane.postgres.dsnEnv: the environment variable %s is unset or empty", pg.DSNEnv)
		}
		pool, err := pgdb.Open(ctx, dsn)
		unreachable := false
		if err != nil {
			// Static stability across a restart: with a copy of the last
			// state this replica applied, it starts and routes on that
			// state, and joins the fleet's state when PostgreSQL answers.
			if errors.Is(err, pgdb.ErrMalformedDSN) || !controlplane.HasCache(pg.Cache) {
				return nil, fmt.Errorf("opening the control plane: %w", err)
			}
			log.Warn("PostgreSQL unreachable at start; starting on the cached state", "cache", pg.Cache, "err", err)
			if pool, err = pgdb.OpenLazy(dsn); err != nil {
				return nil, fmt.Errorf("opening the control plane: %w", err)
			}
			unreachable = true
		}
		g.Defer(pool.Close) // deferred first, so closed last
		store, err := controlplane.OpenPostgres(ctx, controlplane.PostgresOptions{Pool: pool, Logger: log, StartUnreachable: unreachable})
		if err != nil {
			return nil, err
		}
		g.Defer(func() { _ = store.Close() })
		leader, err := controlplane.NewPostgresElector(pool, cfg.ControlPlane.SyncInterval, reg, log)
		if err != nil {
			return nil, err
		}
		cp.store, cp.name, cp.leader, cp.pool = store, "postgres", leader, pool
		log.Info("control plane: postgres", "host", pool.Config().ConnConfig.Host, "port", pool.Config().ConnConfig.Port, "database", pool.Config().ConnConfig.Database)
		return cp, nil
	}
	store, err := controlplane.OpenSQLite(ctx, cfg.ControlPlane.SQLite.Path, nil)
	if err != nil {
		return nil, err
	}
	g.Defer(func() { _ = store.Close() })
	leader, err := controlplane.NewSingleElector(reg)
	if err != nil {
		return nil, err
	}
	cp.store, cp.name, cp.leader = store, "sqlite", leader
	log.Info("control plane: sqlite", "path", cfg.ControlPlane.SQLite.Path)
	return cp, nil
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
// and keeps it pruned; nil otherwise. With a PostgreSQL control plane
// (pool non-nil) the ledger lives in the same database, so every replica of
// the fleet, on any host, shares it; else it is the SQLite file
// intents.db, shared by the gateways of one host.
func openIntents(g *group, cfg *config.Config, pool *pgxpool.Pool, log *slog.Logger) (intent.Ledger, error) {
	if !cfg.HasWriteAffinity() {
		return nil, nil
	}
	var l intent.Ledger
	var err error
	if pool != nil {
		// Lazy: the table is created on first use, so a replica that starts
		// while PostgreSQL is down (on its cached state) still starts; its
		// keyed writes get a retryable 503 until the database answers.
		l, err = intent.OpenPostgresLazy(pool)
	} else {
		l, err = intent.OpenSQLite(g.ctx, cfg.Intents.DB)
	}
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
