package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDemoConfigIsValid(t *testing.T) {
	t.Parallel()
	c, err := Demo()
	if err != nil {
		t.Fatalf("embedded demo config: %v", err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Admin.Listen != "127.0.0.1:8090" {
		t.Fatalf("demo listeners = %s, %s; want 127.0.0.1:8080 and 127.0.0.1:8090", c.Listen, c.Admin.Listen)
	}
	if len(c.Routes) == 0 {
		t.Fatal("demo config has no routes")
	}
}

func TestDefaultsAppliedOnce(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\nroutes: [{name: a, path: /a}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams["legacy"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"limits.maxRequestBodyBytes", c.Limits.MaxRequestBodyBytes, 4 << 20},
		{"limits.shutdownTimeout", c.Limits.ShutdownTimeout, 20 * time.Second},
		{"upstream timeout", u.Timeout, 10 * time.Second},
		{"upstream kind", u.Kind, "legacy"},
		{"breaker ratio", u.Breaker.FailureRatio, 0.5},
		{"route legacy", c.Routes[0].Legacy, "legacy"},
		{"route cohort", c.Routes[0].Cohort, "a"},
		{"route fallback", c.Routes[0].FallbackEnabled(), true},
		{"default route", c.DefaultRoute.Name, "default"},
		{"user key header", c.Routing.UserKey.Header, "X-User-Id"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestValidateReportsEveryProblem checks that one pass over a bad file names
// each problem with its key path and bad value.
func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	bad := `
listen: "localhost"
admin: {listen: "127.0.0.1:8090", tokens: [{name: ops, value: short, scopes: [admin]}]}
trustedProxies: ["not-a-cidr"]
upstreams:
  legacy: {url: "http://127.0.0.1:8081/shop"}
  newsvc: {url: "ftp://x", kind: modern, breaker: {failureRatio: 2}}
routes:
  - {name: "Bad Name", path: "shop", methods: [FETCH]}
  - {name: dup, path: /a/*, canary: 150, new: nowhere}
  - {name: dup, path: "/b/*/c", retries: 9, flag: beta}
`
	_, err := Parse([]byte(bad))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []string{
		"listen: must be ip:port",
		"admin.tokens[0].value: must be at least 16 characters",
		"admin.tokens[0].scopes[0]: must be read or write (got admin)",
		"trustedProxies[0]: must be a CIDR",
		"upstreams.legacy.url: must not have a path",
		"upstreams.newsvc.url: must be http(s)://host:port (got ftp://x)",
		"upstreams.newsvc.kind: must be legacy, new or acl (got modern)",
		"upstreams.newsvc.breaker.failureRatio: must be in (0, 1] (got 2)",
		"routes[0].name: is required and must match",
		"routes[0].path: must start with / (got shop)",
		"routes[0].methods[0]: unknown HTTP method (got FETCH)",
		"routes[1].new: names no upstream (known: legacy, newsvc) (got nowhere)",
		"routes[1].canary: must be a percent between 0 and 100 (got 150)",
		"routes[2].name: duplicates routes[1].name",
		"routes[2].path: a * may only end the pattern",
		"routes[2].retries: must be between 0 and 3 (got 9)",
		"routes[2].flag: needs a flag provider",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("validation output lacks %q\nfull output:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "short") {
		t.Errorf("a token value leaked into the error:\n%s", msg)
	}
}

func TestUnknownKeysAreErrors(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\nroutez: []\n"))
	if err == nil || !strings.Contains(err.Error(), "routez") {
		t.Fatalf("want an error naming the unknown key routez, got %v", err)
	}
}

func TestLoadNamesMissingFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(p)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want ErrNotExist, got %v", err)
	}
}

func TestTokenSecretPrefersEnvironment(t *testing.T) {
	t.Setenv("FICUS_TEST_TOKEN", "from-the-environment-123")
	tok := Token{Name: "x", Value: "from-the-file-123456", ValueEnv: "FICUS_TEST_TOKEN"}
	if got := tok.Secret(); got != "from-the-environment-123" {
		t.Fatalf("Secret() = %q, want the environment's value", got)
	}
	t.Setenv("FICUS_TEST_TOKEN", "")
	if got := tok.Secret(); got != "from-the-file-123456" {
		t.Fatalf("Secret() with empty env = %q, want the file's value", got)
	}
}

func TestShadowDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	ok := `
upstreams: {legacy: {url: 'http://127.0.0.1:8081'}, catalog: {url: 'http://127.0.0.1:8082', kind: new}}
routes:
  - name: products
    path: /api/v1/products/*
    new: catalog
    shadow: {percent: 10}
`
	c, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Routes[0].Shadow
	if len(s.Methods) != 2 || s.Methods[0] != "GET" || s.Timeout != 2*time.Second || s.Concurrency != 16 ||
		s.Compare.RelativeThreshold != 0.2 || s.Compare.AbsoluteThreshold != 0.0003 {
		t.Fatalf("shadow defaults not applied: %+v", *s)
	}

	bad := `
upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}
routes:
  - name: orders
    path: /api/v1/orders/*
    shadow:
      percent: 101
      methods: [GET, POST]
      compare:
        ignore: [{path: "items/*/updatedAt", expires: "next week"}]
`
	_, err = Parse([]byte(bad))
	if err == nil {
		t.Fatal("want validation errors")
	}
	for _, w := range []string{
		"routes[0].shadow.percent: must be a percent between 0 and 100 (got 101)",
		"routes[0].shadow.target: is required on a route without a new upstream",
		"routes[0].shadow.methods[1]: is a write: mirror writes only with writes: true",
		"routes[0].shadow.compare.ignore[0].path: must be a JSON pointer",
		"routes[0].shadow.compare.ignore[0].owner: is required",
		"routes[0].shadow.compare.ignore[0].reason: is required",
		"routes[0].shadow.compare.ignore[0].expires: must be a date YYYY-MM-DD",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("validation output lacks %q\nfull output:\n%s", w, err)
		}
	}
}

func TestBreakerWindowMustSeeItsTimeouts(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`
upstreams:
  legacy: {url: 'http://127.0.0.1:8081', timeout: 20s, breaker: {window: 10s}}
  defaulted: {url: 'http://127.0.0.1:8084', timeout: 20s}
  slow: {url: 'http://127.0.0.1:8082', timeout: 1s, breaker: {window: 5s}}
  off: {url: 'http://127.0.0.1:8083', timeout: 30s, breaker: {disabled: true, window: 1s}}
routes:
  - {name: a, path: /a, legacy: slow, timeout: 8s}
  - {name: b, path: /b, legacy: off, timeout: 60s}
`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a ValidationError", err)
	}
	msg := err.Error()
	for _, want := range []string{"upstreams.legacy.breaker.window", "upstreams.legacy.timeout", "routes[0].timeout", "upstreams.slow.breaker.window"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "upstreams.off") || strings.Contains(msg, "routes[1]") {
		t.Errorf("a disabled breaker has no window to check:\n%s", msg)
	}
	if strings.Contains(msg, "upstreams.defaulted") {
		t.Errorf("the default window must follow a long timeout:\n%s", msg)
	}
	if len(ve.Problems) != 2 {
		t.Errorf("%d problems, want 2:\n%s", len(ve.Problems), msg)
	}
}

func TestDenyRoutes(t *testing.T) {
	t.Parallel()
	c, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	var fenced bool
	for _, r := range c.Routes {
		if r.Path == "/shop/admin/*" && r.Deny != nil && r.Deny.Status == 404 {
			fenced = true
		}
	}
	if !fenced {
		t.Fatal("the demo must fence the legacy's /shop/admin/* (its fault-injection API)")
	}
	d, err := Parse([]byte("upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\nroutes: [{name: a, path: /a/*, deny: {}}, {name: b, path: /b, deny: {status: 403}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := d.Routes[0].Deny, d.Routes[1].Deny; a.Status != 404 || a.Code != "NOT_FOUND" || a.Message == "" || b.Code != "FORBIDDEN" || b.Message == "" {
		t.Fatalf("deny defaults: %+v %+v", a, b)
	}
	_, err = Parse([]byte("upstreams: {legacy: {url: 'http://127.0.0.1:8081'}, n: {url: 'http://127.0.0.1:8082'}}\n" +
		"routes: [{name: a, path: /a, deny: {status: 302, code: 'bad code'}, new: n}]\n"))
	for _, want := range []string{"routes[0].deny.status", "routes[0].deny.code", "routes[0].deny:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
