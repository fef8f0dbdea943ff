package route

import (
	"fmt"
	"strings"

	"github.com/ficus-gw/ficus/config"
)

// Method indexes the methods a route can list; the same index labels the
// request metrics. OTHER covers every method the configuration cannot name.
type Method uint8

// Known methods, in the order of their metric label.
const (
	GET Method = iota
	HEAD
	POST
	PUT
	PATCH
	DELETE
	OPTIONS
	TRACE
	CONNECT
	OTHER
	NumMethods // number of Method values, for sizing arrays
)

var methodNames = [...]string{GET: "GET", HEAD: "HEAD", POST: "POST", PUT: "PUT", PATCH: "PATCH", DELETE: "DELETE", OPTIONS: "OPTIONS", TRACE: "TRACE", CONNECT: "CONNECT", OTHER: "OTHER"}

// String returns the metric label of m.
func (m Method) String() string { return methodNames[m] }

// Safe reports whether m is a safe method (RFC 9110 §9.2.1) that the
// gateway may replay on another upstream. TRACE is safe too but is never
// replayed.
func (m Method) Safe() bool { return m == GET || m == HEAD || m == OPTIONS }

// ParseMethod maps a request method to its index without allocating.
func ParseMethod(b []byte) Method {
	switch string(b) {
	case "GET":
		return GET
	case "HEAD":
		return HEAD
	case "POST":
		return POST
	case "PUT":
		return PUT
	case "PATCH":
		return PATCH
	case "DELETE":
		return DELETE
	case "OPTIONS":
		return OPTIONS
	case "TRACE":
		return TRACE
	case "CONNECT":
		return CONNECT
	}
	return OTHER
}

// Route is one compiled route.
type Route struct {
	// Name is the configured route name (metric label, X-Ficus-Route).
	Name string
	// Allow is the value of the Allow header of a 405 answer.
	Allow string
	// methods is a bit set over Method.
	methods uint16
}

// defaultMethods is what a route without a methods list accepts: every
// method except TRACE (it echoes the request, cookies and credentials
// included, back to whoever can read the answer: cross-site tracing) and
// CONNECT (a tunnel through the gateway to wherever the upstream can
// reach). A route that needs them lists them explicitly.
const defaultMethods = 1<<GET | 1<<HEAD | 1<<POST | 1<<PUT | 1<<PATCH | 1<<DELETE | 1<<OPTIONS | 1<<OTHER

// defaultAllow is the Allow header of a route without a methods list.
const defaultAllow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// Allows reports whether the route accepts m.
func (r *Route) Allows(m Method) bool { return r.methods&(1<<m) != 0 }

// Table maps normalised paths to route indexes. It is immutable after
// Compile and safe for concurrent use.
type Table struct {
	routes []Route
	exact  map[string]int
	prefix map[string]int // key: pattern without the trailing "/*"
	def    int
}

// Compile builds the table. Index i of the result is routes[i]; the default
// route gets index len(routes), which is what Match returns when nothing
// else matches.
func Compile(routes []config.Route, def config.Route) (*Table, error) {
	t := &Table{
		routes: make([]Route, 0, len(routes)+1),
		exact:  make(map[string]int),
		prefix: make(map[string]int),
		def:    len(routes),
	}
	for i, r := range routes {
		cr, err := compileRoute(r)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] (%s): %w", i, r.Name, err)
		}
		t.routes = append(t.routes, cr)
		if base, ok := strings.CutSuffix(r.Path, "/*"); ok {
			if _, dup := t.prefix[base]; dup {
				return nil, fmt.Errorf("routes[%d] (%s): duplicate prefix %q", i, r.Name, r.Path)
			}
			t.prefix[base] = i
			continue
		}
		if _, dup := t.exact[r.Path]; dup {
			return nil, fmt.Errorf("routes[%d] (%s): duplicate path %q", i, r.Name, r.Path)
		}
		t.exact[r.Path] = i
	}
	cd, err := compileRoute(def)
	if err != nil {
		return nil, fmt.Errorf("defaultRoute: %w", err)
	}
	t.routes = append(t.routes, cd)
	return t, nil
}

func compileRoute(r config.Route) (Route, error) {
	if r.Name == "" {
		return Route{}, fmt.Errorf("route has no name")
	}
	if r.Path == "" || r.Path[0] != '/' || strings.Contains(strings.TrimSuffix(r.Path, "/*"), "*") {
		return Route{}, fmt.Errorf("path %q is not /exact or /prefix/*", r.Path)
	}
	if p := strings.TrimSuffix(r.Path, "/*"); p != "" {
		if got, err := Normalize(nil, []byte(p)); err != nil || string(got) != p {
			return Route{}, fmt.Errorf("path %q is not normalised", r.Path)
		}
	}
	cr := Route{Name: r.Name}
	var allow []string
	for _, m := range r.Methods {
		mi := ParseMethod([]byte(strings.ToUpper(m)))
		if mi == OTHER {
			return Route{}, fmt.Errorf("unknown method %q", m)
		}
		if cr.methods&(1<<mi) == 0 {
			allow = append(allow, mi.String())
		}
		cr.methods |= 1 << mi
	}
	cr.Allow = strings.Join(allow, ", ")
	if cr.methods == 0 {
		cr.methods, cr.Allow = defaultMethods, defaultAllow
	}
	return cr, nil
}

// Len is the number of routes including the default one.
func (t *Table) Len() int { return len(t.routes) }

// Default is the index of the default route.
func (t *Table) Default() int { return t.def }

// Route returns the compiled route at index i.
func (t *Table) Route(i int) *Route { return &t.routes[i] }

// Match returns the index of the route serving the normalised path p:
// an exact route if one names p, else the prefix route with the longest
// prefix ("/x/*" matches "/x" and everything below it), else the default
// route. It does not allocate.
func (t *Table) Match(p []byte) int {
	if i, ok := t.exact[string(p)]; ok {
		return i
	}
	if len(t.prefix) == 0 {
		return t.def
	}
	end := len(p)
	for {
		if i, ok := t.prefix[string(p[:end])]; ok {
			return i
		}
		if end == 0 {
			return t.def
		}
		end = lastSlash(p[:end])
		if end < 0 {
			return t.def
		}
	}
}
