package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/route"
)

// TestServiceMetricsNotRoutedByTheDemoGateway: the Catalog, Order and ACL
// services serve /metrics on their own ports, which is safe only while no
// gateway route forwards /metrics to them (the gateway forwards the path
// unchanged). The legacy shop is the default route's upstream, so it
// serves its metrics on a listener of its own (demoLegacyMetricsPort), which
// no upstream names.
func TestServiceMetricsNotRoutedByTheDemoGateway(t *testing.T) {
	t.Parallel()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := route.Compile(cfg.Routes, cfg.DefaultRoute)
	if err != nil {
		t.Fatal(err)
	}
	var o demoOptions
	selfServed := map[string]bool{o.addr(demoCatalogPort): true, o.addr(demoOrdersPort): true, o.addr(demoACLPort): true}
	for _, p := range []string{"/metrics", "/metrics/", "/api/v1/../metrics"} {
		norm, err := route.Normalize(nil, []byte(p))
		if err != nil {
			t.Fatalf("normalising %s: %v", p, err)
		}
		i := tb.Match(norm)
		var r config.Route
		if i == tb.Default() {
			r = cfg.DefaultRoute
		} else {
			r = cfg.Routes[i]
		}
		for _, name := range []string{r.Legacy, r.New} {
			if name == "" {
				continue
			}
			u, err := url.Parse(cfg.Upstreams[name].URL)
			if err != nil {
				t.Fatal(err)
			}
			if selfServed[u.Host] {
				t.Errorf("GET %s through the gateway reaches %s (%s), which serves its own /metrics there", p, name, u.Host)
			}
		}
	}
	for name, up := range cfg.Upstreams {
		if strings.Contains(up.URL, o.addr(demoLegacyMetricsPort)) {
			t.Errorf("upstream %s points at the legacy's metrics listener %s", name, o.addr(demoLegacyMetricsPort))
		}
	}
}
