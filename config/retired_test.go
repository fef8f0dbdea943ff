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

func TestGoneDefaultsAndSuccessor(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\nroutes: [{name: a, path: /a, deny: {status: 410, successor: /b}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Routes[0].Deny; d.Code != "GONE" || !strings.Contains(d.Message, "Link header") {
		t.Fatalf("gone defaults: %+v", d)
	}
	for _, bad := range []string{"b", "ftp://x/y", "/b>; rel=x"} {
		_, err := Parse([]byte("upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\nroutes: [{name: a, path: /a, deny: {status: 410, successor: '" + bad + "'}}]\n"))
		if err == nil || !strings.Contains(err.Error(), "routes[0].deny.successor") {
			t.Errorf("successor %q: %v", bad, err)
		}
	}
}
