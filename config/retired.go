package config

import (
	"net/url"
	"strings"
)

// validateLegacyRemoved checks a route whose legacy side is retired
// (routes[].legacyRemoved): it must name the side that now serves
// everything, and nothing that only makes sense with two sides.
func validateLegacyRemoved(p string, r Route, add func(string, any, string, ...any)) {
	if !r.LegacyRemoved {
		return
	}
	if r.New == "" {
		add(p+".legacyRemoved", true, "needs the new upstream that serves the route from now on (routes[].new)")
	}
	if r.Flag != "" {
		add(p+".flag", r.Flag, "has nothing to decide once the legacy side is removed: drop it")
	}
	if r.Shadow != nil {
		add(p+".shadow", "(set)", "has no other side to compare with once the legacy side is removed: drop it")
	}
	if r.Affinity != nil {
		add(p+".affinity", "(set)", "has no other side to bind to once the legacy side is removed: drop it")
	}
	if r.Rollout != nil {
		add(p+".rollout", "(set)", "is done once the legacy side is removed: drop it")
	}
	if fb := r.Fallback; fb != nil && *fb {
		add(p+".fallback", true, "cannot fall back to a removed legacy side: drop it")
	}
}

// validateSuccessor checks a retired route's successor (routes[].deny.
// successor): an absolute path or an http(s) URL that fits in a Link
// header as it is.
func validateSuccessor(p, s string, add func(string, any, string, ...any)) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil, strings.ContainsAny(s, "<>\" \t\r\n"):
		add(p, s, "must be an absolute path or an http(s) URL without spaces, quotes or angle brackets")
	case u.Scheme == "" && !strings.HasPrefix(s, "/"):
		add(p, s, "must be an absolute path (/api/v2/products) or an http(s) URL")
	case u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https":
		add(p, s, "must be an absolute path or an http(s) URL")
	}
}
