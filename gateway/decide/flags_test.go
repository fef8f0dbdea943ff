package decide

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/ficus-gw/ficus/config"
)

// betaFlag answers "new" for the beta users, "legacy" for the blocked ones
// and no variant for everyone else; evals counts provider evaluations.
func betaFlag(beta, blocked []string, evals *atomic.Int64) memprovider.InMemoryFlag {
	eval := func(_ memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		evals.Add(1)
		key, _ := fc[openfeature.TargetingKey].(string)
		switch {
		case slices.Contains(beta, key):
			return "new", openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "new"}
		case slices.Contains(blocked, key):
			return "legacy", openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "legacy"}
		}
		return "", openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason}
	}
	return memprovider.InMemoryFlag{Key: "beta-route", State: memprovider.Enabled, ContextEvaluator: &eval}
}

func TestFlagSendsBetaUsersRegardlessOfPercent(t *testing.T) {
	t.Parallel()
	var evals atomic.Int64
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"beta-route": betaFlag([]string{"alice", "bob"}, []string{"mallory"}, &evals),
	})
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, p)
	app := fiber.New()
	route := routeIndex(t, cfg, "beta") // canary 0
	for _, percent := range []float64{0, 100} {
		if _, err := e.SetCanary("beta", percent); err != nil {
			t.Fatal(err)
		}
		fallThrough := Decision{Legacy, ReasonDefault}
		if percent == 100 {
			fallThrough = Decision{New, ReasonCanary}
		}
		tests := []struct {
			user string
			want Decision
		}{
			{"alice", Decision{New, ReasonFlag}},
			{"bob", Decision{New, ReasonFlag}},
			{"mallory", Decision{Legacy, ReasonFlag}},
			{"carol", fallThrough},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s at %v%%", tc.user, percent), func(t *testing.T) {
				if d := decideOne(e, app, route, "r", user(tc.user)); d != tc.want {
					t.Fatalf("%v, want %v", d, tc.want)
				}
			})
		}
	}
	// Answers are cached per evaluation context: repeating a user does not
	// reach the provider again.
	before := evals.Load()
	for range 50 {
		decideOne(e, app, route, "r", user("alice"))
	}
	if n := evals.Load() - before; n != 0 {
		t.Fatalf("50 repeated requests cost %d provider evaluations, want 0 (cached)", n)
	}
	// A configuration change drops the cache: carol joins the beta.
	since := e.flushes.Load()
	p.UpdateFlags(map[string]memprovider.InMemoryFlag{
		"beta-route": betaFlag([]string{"alice", "bob", "carol"}, nil, &evals),
	})
	waitFlush(t, e, since)
	if d := decideOne(e, app, route, "r", user("carol")); d != (Decision{New, ReasonFlag}) {
		t.Fatalf("carol after joining the beta: %v", d)
	}
	if d := decideOne(e, app, route, "r", user("mallory")); d != (Decision{New, ReasonCanary}) {
		t.Fatalf("mallory after leaving the block list (canary 100): %v", d)
	}
}

func TestFlagEvaluationErrorServesDefault(t *testing.T) {
	t.Parallel()
	// The provider knows no "beta-route": every evaluation is FLAG_NOT_FOUND.
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{})
	cfg := testConfig(func(c *config.Config) { c.Routes[4].Canary = 100 })
	e, reg := newTestEngine(t, cfg, p)
	app := fiber.New()
	route := routeIndex(t, cfg, "beta")
	for i := range 3 {
		if d := decideOne(e, app, route, "r", user("alice")); d != (Decision{Legacy, ReasonError}) {
			t.Fatalf("request %d: %v, want legacy/error even at canary 100", i, d)
		}
	}
	if n := metricValue(t, reg, MetricFlagErrors, "beta"); n != 3 {
		t.Fatalf("%s{route=beta} = %v, want 3", MetricFlagErrors, n)
	}
}

// writeAtomically replaces path the way operators must: write a temp file,
// then rename over the old one (an in-place rewrite is read half-empty).
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

const flagFileV1 = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "beta-route": {
      "state": "ENABLED",
      "variants": {"legacy": "legacy", "new": "new", "canary": "canary"},
      "defaultVariant": "canary",
      "targeting": {
        "if": [
          {"or": [
            {"in": [{"var": "targetingKey"}, ["alice", "bob"]]},
            {"==": [{"var": "x-tenant"}, "acme"]}
          ]},
          "new",
          null
        ]
      }
    }
  }
}`

// flagFileV2 sends everyone on the beta route to new.
const flagFileV2 = `{
  "flags": {
    "beta-route": {
      "state": "ENABLED",
      "variants": {"legacy": "legacy", "new": "new"},
      "defaultVariant": "new"
    }
  }
}`

func TestFlagdFileEditChangesDecisionsWithoutRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "flags.json")
	writeAtomically(t, path, flagFileV1)
	p := fileProvider(t, path)
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, p)
	// flagd reports its initial load as a configuration change too; let
	// that one pass so that the wait below is for the edit.
	waitFlush(t, e, 0)
	app := fiber.New()
	route := routeIndex(t, cfg, "beta") // canary 0
	tests := []struct {
		name string
		req  request
		want Decision
	}{
		{"beta user", user("alice"), Decision{New, ReasonFlag}},
		{"other user", user("carol"), Decision{Legacy, ReasonDefault}},
		{"tenant attribute from a context header", request{headers: map[string]string{"X-User-Id": "dave", "X-Tenant": "acme"}}, Decision{New, ReasonFlag}},
		{"other tenant", request{headers: map[string]string{"X-User-Id": "dave", "X-Tenant": "globex"}}, Decision{Legacy, ReasonDefault}},
	}
	for _, tc := range tests {
		if d := decideOne(e, app, route, "r", tc.req); d != tc.want {
			t.Fatalf("before the edit, %s: %v, want %v", tc.name, d, tc.want)
		}
	}
	since := e.flushes.Load()
	writeAtomically(t, path, flagFileV2)
	waitFlush(t, e, since)
	if d := decideOne(e, app, route, "r", user("carol")); d != (Decision{New, ReasonFlag}) {
		t.Fatalf("after the edit, carol: %v, want new/flag", d)
	}
}

// A thousand active users all stay cached: after one request each, a
// second round costs the provider nothing. (A direct-mapped cache failed
// this: a few users always shared a slot and evicted each other.)
func TestFlagCacheHoldsEveryActiveUser(t *testing.T) {
	t.Parallel()
	var evals atomic.Int64
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"beta-route": betaFlag([]string{"user-7"}, nil, &evals),
	})
	cfg := testConfig()
	e, _ := newTestEngine(t, cfg, p)
	app := fiber.New()
	route := routeIndex(t, cfg, "beta")
	const users = 1000
	for i := range users {
		decideOne(e, app, route, "r", user(fmt.Sprintf("user-%d", i)))
	}
	if n := evals.Load(); n != users {
		t.Fatalf("first round: %d provider evaluations, want %d (one per user)", n, users)
	}
	for round := range 3 {
		for i := range users {
			d := decideOne(e, app, route, "r", user(fmt.Sprintf("user-%d", i)))
			if i == 7 && d != (Decision{New, ReasonFlag}) {
				t.Fatalf("round %d: user-7 got %v from the cache, want new/flag", round, d)
			}
		}
	}
	if n := evals.Load() - users; n != 0 {
		t.Fatalf("3 more rounds over the same %d users cost %d provider evaluations, want 0", users, n)
	}
}

// Header names in the configuration match whatever their case, as HTTP
// field names do.
func TestConfiguredHeaderNamesMatchInAnyCase(t *testing.T) {
	t.Parallel()
	var evals atomic.Int64
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"beta-route": betaFlag([]string{"alice"}, nil, &evals),
	})
	cfg := testConfig(func(c *config.Config) {
		c.Routing.UserKey.Header = "x-USER-id"
		c.Routing.Override.Header = "x-ficus-BACKEND"
		c.Routing.Override.TokenHeader = "X-FICUS-OVERRIDE-TOKEN"
	})
	e, _ := newTestEngine(t, cfg, p)
	app := fiber.New()
	if d := decideOne(e, app, routeIndex(t, cfg, "beta"), "r", request{headers: map[string]string{"x-user-id": "alice"}}); d != (Decision{New, ReasonFlag}) {
		t.Fatalf("user key from a lower-case header: %v, want new/flag", d)
	}
	ov := request{headers: map[string]string{"X-Ficus-Backend": "new", "x-ficus-override-token": testOverrideToken}}
	if d := decideOne(e, app, routeIndex(t, cfg, "catalog"), "r", ov); d != (Decision{New, ReasonOverride}) {
		t.Fatalf("override: %v, want new/override", d)
	}
}
