package gateway

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ficus-gw/ficus/config"
)

func TestReloadSwapsRoutesAndUpstreamsAtomically(t *testing.T) {
	t.Parallel()
	a, b := newUpstream(t, ok("A")), newUpstream(t, ok("B"))
	n := newUpstream(t, ok("N"))
	conf := func(legacyURL, path string, edit func(*config.Config)) *config.Config {
		return testConfig(t, map[string]string{"legacy": legacyURL, "n": n.URL},
			[]config.Route{{Name: "x", Path: path}, {Name: "p", Path: "/p/*", New: "n"}}, edit)
	}
	r := start(t, conf(a.URL, "/x/*", nil), nil)
	body := func(path string) (string, string) {
		t.Helper()
		resp, b := r.get(t, path)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b), resp.Header.Get(HeaderRoute)
	}
	if got, rt := body("/x/1"); got != "A" || rt != "x" {
		t.Fatalf("before: %s from route %s", got, rt)
	}

	changed, err := r.gw.Reload(conf(b.URL, "/y/*", nil))
	if err != nil || len(changed) != 2 || !strings.Contains(strings.Join(changed, " "), "upstreams.legacy") || !strings.Contains(strings.Join(changed, " "), "routes[0] (x)") {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if got, rt := body("/y/1"); got != "B" || rt != "x" {
		t.Fatalf("after: /y/1 %s from route %s", got, rt)
	}
	if got, rt := body("/x/1"); got != "B" || rt != "default" {
		t.Fatalf("after: /x/1 %s from route %s", got, rt)
	}

	// Refused files change nothing and say why.
	for _, tc := range []struct {
		cfg  *config.Config
		want string
	}{
		{testConfig(t, map[string]string{"legacy": a.URL, "n": n.URL}, []config.Route{{Name: "x", Path: "/y/*"}, {Name: "p", Path: "/p/*", New: "n"}, {Name: "z", Path: "/z"}}, nil), "adding, removing, renaming or reordering routes"},
		{conf(a.URL, "/y/*", func(c *config.Config) { c.Routes[1].Canary = 50 }), "routes[1].canary (p): is live state: change it with ficus ctl canary"},
		{conf(a.URL, "/y/*", func(c *config.Config) { c.Listen = "127.0.0.1:18081" }), "listen: changes only with a restart"},
	} {
		_, err := r.gw.Reload(tc.cfg)
		var refused *ReloadRefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("refused reload: %v, want %q", err, tc.want)
		}
		if got, _ := body("/y/1"); got != "B" {
			t.Fatalf("a refused reload changed the serving upstream: %s", got)
		}
	}
	if changed, err := r.gw.Reload(conf(b.URL, "/y/*", nil)); err != nil || len(changed) != 0 {
		t.Fatalf("reloading the running file: %v %v", changed, err)
	}

	// Requests in flight during reloads: every one answered, by A or B.
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				resp, b := r.get(t, "/y/1")
				if resp.StatusCode != 200 || (string(b) != "A" && string(b) != "B") {
					errs <- string(b)
					return
				}
			}
		}()
	}
	for i := range 20 {
		url := a.URL
		if i%2 == 1 {
			url = b.URL
		}
		if _, err := r.gw.Reload(conf(url, "/y/*", nil)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a request during reloads failed: %s", e)
	}
}
