package config

import (
	"strings"
	"testing"
)

func TestLegacyRemovedValidation(t *testing.T) {
	t.Parallel()
	base := "upstreams: {legacy: {url: 'http://127.0.0.1:8081'}, catalog: {url: 'http://127.0.0.1:8082', kind: new}}\nflags: {file: f.json}\n"
	c, err := Parse([]byte(base + "routes: [{name: p, path: /p/*, new: catalog, legacyRemoved: true}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Routes[0].LegacyRemoved {
		t.Fatal("legacyRemoved not read")
	}
	_, err = Parse([]byte(base + "routes:\n" +
		"  - {name: a, path: /a/*, legacyRemoved: true}\n" +
		"  - {name: b, path: /b/*, new: catalog, legacyRemoved: true, flag: x, fallback: true, shadow: {percent: 10}}\n"))
	for _, want := range []string{"routes[0].legacyRemoved: needs the new upstream", "routes[1].flag", "routes[1].shadow", "routes[1].fallback"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
