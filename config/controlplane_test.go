package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const cpBase = "upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\nroutes: [{name: a, path: /a}]\n"

func TestControlPlaneDefaultsToTheAuditDBFile(t *testing.T) {
	c, err := Parse([]byte(cpBase + "admin: {auditDB: old/audit.db}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ControlPlane.SQLite.Path != "old/audit.db" || c.ControlPlane.SyncInterval != time.Second || c.ControlPlane.Postgres.Enabled() {
		t.Fatalf("controlPlane = %+v; want sqlite at admin.auditDB, 1s sync", c.ControlPlane)
	}
	c, err = Parse([]byte(cpBase + "controlPlane: {postgres: {dsnEnv: FICUS_PG}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ControlPlane.SQLite.Path != "" || !c.ControlPlane.Postgres.Enabled() {
		t.Fatalf("with postgres: %+v; want no sqlite path", c.ControlPlane)
	}
	t.Setenv("FICUS_PG_TEST_DSN", "postgres://x@127.0.0.1:1/db")
	if got := (ControlPlanePostgres{DSNEnv: "FICUS_PG_TEST_DSN"}).ResolveDSN(); got != "postgres://x@127.0.0.1:1/db" {
		t.Fatalf("ResolveDSN = %q", got)
	}
}

func TestControlPlaneValidationNamesEveryBadField(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(cpBase + `controlPlane:
  sqlite: {path: a.db}
  postgres: {dsn: "not a dsn", dsnEnv: "1BAD"}
  syncInterval: 10ms
`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v; want *ValidationError", err)
	}
	for _, want := range []string{"controlPlane.sqlite.path", "controlPlane.postgres.dsn:", "controlPlane.postgres.dsnEnv: set dsn or dsnEnv", "controlPlane.postgres.dsnEnv: must be an environment", "controlPlane.syncInterval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "not a dsn") {
		t.Errorf("the DSN (it may hold a password) is echoed:\n%v", err)
	}
}
