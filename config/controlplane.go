package config

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// ---- control plane (live route state shared by every replica) ----------

// ControlPlane says where the live route state (canary percent, pin,
// rollout progress), its version and the audit log are kept. The config
// file declares the routes and their initial state; a value the control
// plane holds (set through the admin API or by the autopilot) overrides
// the file's. Exactly one of SQLite and Postgres is used: PostgreSQL when
// its DSN is set, else the SQLite file.
type ControlPlane struct {
	// SQLite is the embedded store of a single gateway.
	SQLite ControlPlaneSQLite `yaml:"sqlite"`
	// Postgres is the store a fleet of replicas shares.
	Postgres ControlPlanePostgres `yaml:"postgres"`
	// SyncInterval is how often each replica checks the state version even
	// without a change notification (the safety net). Default 1s; allowed
	// 100ms-10m.
	SyncInterval time.Duration `yaml:"syncInterval"`
}

// ControlPlaneSQLite is the embedded control plane.
type ControlPlaneSQLite struct {
	// Path of the SQLite file. Default: admin.auditDB (so a gateway from
	// before the control plane keeps its file, migrated in place), whose
	// own default is "data/ficus-audit.db".
	Path string `yaml:"path"`
}

// ControlPlanePostgres is the fleet's control plane.
type ControlPlanePostgres struct {
	// DSN is a PostgreSQL connection string (postgres://user@host:5432/db
	// or key=value pairs). Prefer DSNEnv for one holding a password.
	DSN string `yaml:"dsn"`
	// DSNEnv names an environment variable holding the DSN.
	DSNEnv string `yaml:"dsnEnv"`
	// Cache is a file where the replica keeps a copy of the last state it
	// applied, so that a replica (re)started while PostgreSQL is
	// unreachable routes on that state instead of refusing to start.
	// Default "data/ficus-controlplane-cache.json"; give each replica on a
	// host its own.
	Cache string `yaml:"cache"`
}

// Enabled reports whether PostgreSQL is configured.
func (p ControlPlanePostgres) Enabled() bool { return p.DSN != "" || p.DSNEnv != "" }

// ResolveDSN returns the DSN, reading DSNEnv when set; "" when the
// variable is unset or empty.
func (p ControlPlanePostgres) ResolveDSN() string {
	if p.DSNEnv != "" {
		return os.Getenv(p.DSNEnv)
	}
	return p.DSN
}

func (c *Config) applyControlPlaneDefaults() {
	cp := &c.ControlPlane
	if !cp.Postgres.Enabled() && cp.SQLite.Path == "" {
		cp.SQLite.Path = c.Admin.AuditDB
	}
	if cp.SyncInterval == 0 {
		cp.SyncInterval = time.Second
	}
	if cp.Postgres.Enabled() && cp.Postgres.Cache == "" {
		cp.Postgres.Cache = "data/ficus-controlplane-cache.json"
	}
}

func (c *Config) validateControlPlane(add func(path string, v any, format string, args ...any)) {
	cp := c.ControlPlane
	pg := cp.Postgres
	if pg.Enabled() && cp.SQLite.Path != "" {
		add("controlPlane.sqlite.path", cp.SQLite.Path, "set controlPlane.sqlite or controlPlane.postgres, not both")
	}
	if pg.DSN != "" && pg.DSNEnv != "" {
		add("controlPlane.postgres.dsnEnv", pg.DSNEnv, "set dsn or dsnEnv, not both")
	}
	if pg.DSN != "" && !validDSN(pg.DSN) {
		add("controlPlane.postgres.dsn", "(hidden)", "must be a postgres:// URL or key=value pairs, e.g. postgres://ficus@127.0.0.1:5432/ficus")
	}
	if pg.DSNEnv != "" {
		if !envName.MatchString(pg.DSNEnv) {
			add("controlPlane.postgres.dsnEnv", pg.DSNEnv, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
		}
	}
	if cp.SyncInterval < 100*time.Millisecond || cp.SyncInterval > 10*time.Minute {
		add("controlPlane.syncInterval", cp.SyncInterval, "must be between 100ms and 10m")
	}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validDSN(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		return err == nil && u.Host != ""
	}
	return strings.Contains(dsn, "=")
}
