package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/admin"
)

func TestFlagFileReloadsAreAuditedAndBadOnesRejected(t *testing.T) {
	dir := t.TempDir()
	flags := filepath.Join(dir, "flags.json")
	write := func(body string) {
		t.Helper()
		tmp := flags + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, flags); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"flags":{"products-backend":{"state":"ENABLED","variants":{"legacy":"legacy","new":"new"},"defaultVariant":"legacy"}}}`)
	legacy := side("legacy")
	defer legacy.Close()
	cfg, err := config.Parse([]byte(`
admin:
  tokens: [{name: operator, value: ` + fleetToken + `, scopes: [read, write]}]
upstreams:
  legacy: {url: ` + legacy.URL + `}
  catalog: {url: ` + legacy.URL + `, kind: new}
flags: {file: ` + flags + `}
routes:
  - {name: products, path: /api/v1/products/*, new: catalog, flag: products-backend}
controlPlane: {sqlite: {path: ` + filepath.Join(dir, "cp.db") + `}}
shadow: {db: ` + filepath.Join(dir, "shadow.db") + `}
retire: {db: ` + filepath.Join(dir, "retire.db") + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	g := newGroup(context.Background())
	defer func() { g.cancel(); _ = g.Wait() }()
	r, err := startGateway(g, cfg, &environment{stdout: io.Discard, stderr: io.Discard, logLevel: new(slog.LevelVar)})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := admin.NewClient("http://"+r.adm, fleetToken, nil)
	ctx := context.Background()

	write(`{"flags":{"products-backend":{"state":"ENABLED","variants":{"legacy":"legacy","new":"new"},"defaultVariant":"new"}}}`)
	var entries []admin.AuditEntry
	waitUntil(t, 10*time.Second, "the reload audited", func() bool {
		entries, _ = c.Audit(ctx, "", 10)
		return len(entries) == 1
	})
	if e := entries[0]; e.Actor != "flags-file" || e.Field != "flags" || !strings.Contains(string(e.New), `"changed":["products-backend"]`) || !strings.Contains(string(e.Old), "sha256") {
		t.Fatalf("audit entry %+v", e)
	}

	write(`{"flags":{"products-backend":{"state":"ENABLED","variants":{"legacy":"legacy"},"defaultVariant":"new"}}}`)
	var st admin.Status
	waitUntil(t, 10*time.Second, "the bad file reported", func() bool {
		st, _ = c.Status(ctx)
		return st.Flags != nil && st.Flags.ReloadErrors == 1
	})
	routes, _ := c.Routes(ctx)
	var out bytes.Buffer
	_ = admin.RenderRoutes(&out, routes, &st)
	if !strings.Contains(out.String(), "LAST RELOAD REJECTED") || !strings.Contains(out.String(), "is not one of its variants") {
		t.Fatalf("ctl routes does not show the rejected file:\n%s", out.String())
	}
	resp, err := http.Get("http://" + r.adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "ficus_flags_reload_errors_total 1") {
		t.Fatal("metrics lack ficus_flags_reload_errors_total 1")
	}
	if entries, _ := c.Audit(ctx, "", 10); len(entries) != 1 {
		t.Fatalf("a rejected file was audited as a reload: %+v", entries)
	}

	// ficus ctl reads routes, status and both reports through one client.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"routes"}, "control plane: sqlite, connected, state version 0"},
		{[]string{"retire", "report"}, "products"},
		{[]string{"shadow", "report"}, "no route has shadow traffic"},
		{[]string{"shadow", "report", "nope"}, `route "nope" has no shadow traffic`},
	} {
		code, out, errOut := runCmd(t, append([]string{"ctl", "--admin", "http://" + r.adm, "--token", fleetToken}, tc.args...)...)
		if !strings.Contains(out+errOut, tc.want) {
			t.Errorf("ficus ctl %v: exit %d, output lacks %q:\n%s%s", tc.args, code, tc.want, out, errOut)
		}
	}
}
