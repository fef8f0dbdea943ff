package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/admin"
)

// TestConfigReloadBySIGHUPAndAdminAPI: a running `ficus gateway` re-reads
// its file on POST /admin/reload (ficus ctl reload) and on SIGHUP, applies
// it atomically and audits it; an invalid file, or one that changes what
// needs a restart, changes nothing and says why.
func TestConfigReloadBySIGHUPAndAdminAPI(t *testing.T) {
	dir := t.TempDir()
	a, b := side("A"), side("B")
	defer a.Close()
	defer b.Close()
	file := filepath.Join(dir, "ficus.yaml")
	pubAddr, admAddr := freeAddr(t), freeAddr(t)
	write := func(legacyURL, path string, canary float64) {
		t.Helper()
		y := `
listen: ` + pubAddr + `
admin:
  listen: ` + admAddr + `
  tokens: [{name: operator, value: ` + fleetToken + `, scopes: [read, write]}]
upstreams:
  legacy: {url: ` + legacyURL + `}
  other: {url: ` + b.URL + `, kind: new}
routes:
  - {name: shop, path: ` + path + `}
  - {name: api, path: /api/*, new: other, canary: ` + ftoa(canary) + `}
controlPlane: {sqlite: {path: ` + filepath.Join(dir, "cp.db") + `}}
shadow: {db: ` + filepath.Join(dir, "shadow.db") + `}
retire: {db: ` + filepath.Join(dir, "retire.db") + `}
`
		if err := os.WriteFile(file+".tmp", []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write(a.URL, "/shop/*", 0)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g := newGroup(context.Background())
	defer func() { g.cancel(); _ = g.Wait() }()
	r, err := startGateway(g, cfg, &environment{stdout: io.Discard, stderr: io.Discard, logLevel: new(slog.LevelVar)},
		reloadableFrom(file, func() (*config.Config, error) { return config.Load(file) }))
	if err != nil {
		t.Fatal(err)
	}
	adm := "http://" + r.adm
	waitUntil(t, 10*time.Second, "the gateway ready", func() bool { return ready(context.Background(), http.DefaultClient, adm) })
	get := func(path string) (string, string) {
		res, err := http.Get("http://" + r.pub + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		return string(body), res.Header.Get("X-Ficus-Route")
	}
	if body, route := get("/shop/x"); !strings.Contains(body, "A") || route != "shop" {
		t.Fatalf("before: %q from %s", body, route)
	}

	// POST /admin/reload through ficus ctl: the legacy upstream moves to B.
	write(b.URL, "/shop/*", 0)
	code, out, errOut := ctl(t, adm, "reload", "-o", "json")
	var res admin.ReloadResult
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || len(res.Changed) != 1 || res.Changed[0] != "upstreams.legacy" {
		t.Fatalf("ctl reload: exit %d %v %+v %s", code, err, res, errOut)
	}
	if body, _ := get("/shop/x"); !strings.Contains(body, "B") {
		t.Fatalf("after the reload the legacy upstream is still A: %q", body)
	}

	// Refused: an invalid value, and a live-state change; nothing changes.
	write(a.URL, "shop-without-slash", 0)
	code, _, errOut = ctl(t, adm, "reload")
	if code != 1 || !strings.Contains(errOut, "RELOAD_REFUSED") || !strings.Contains(errOut, "routes[0].path") {
		t.Fatalf("invalid file: exit %d, %s", code, errOut)
	}
	write(b.URL, "/shop/*", 50)
	code, _, errOut = ctl(t, adm, "reload")
	if code != 1 || !strings.Contains(errOut, "routes[1].canary (api): is live state") {
		t.Fatalf("canary in the file: exit %d, %s", code, errOut)
	}
	if body, route := get("/shop/x"); !strings.Contains(body, "B") || route != "shop" {
		t.Fatalf("a refused reload changed the gateway: %q from %s", body, route)
	}

	// SIGHUP: the route moves to /store/*.
	write(b.URL, "/store/*", 0)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the SIGHUP reload applied", func() bool {
		_, route := get("/store/x")
		return route == "shop"
	})

	// Both applied reloads are audited, with who asked and what changed.
	var actors []string
	waitUntil(t, 10*time.Second, "both reloads audited", func() bool { // the audit follows the swap
		var entries []admin.AuditEntry
		decodeJSON(t, adm, &entries, "audit", "-o", "json")
		actors = actors[:0]
		for _, e := range entries {
			if e.Field == fieldConfig {
				actors = append(actors, e.Actor+":"+string(e.New))
			}
		}
		return len(actors) == 2
	})
	if len(actors) != 2 || !strings.HasPrefix(actors[0], "SIGHUP:") || !strings.Contains(actors[0], "routes[0] (shop)") ||
		!strings.HasPrefix(actors[1], "operator:") || !strings.Contains(actors[1], "upstreams.legacy") {
		t.Fatalf("audit of reloads (newest first): %v", actors)
	}
}

// freeAddr is a loopback address nothing listened on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func ftoa(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
