package shadow

import "github.com/valyala/fasthttp"

// Mapping lets a route whose one side is a "legacy"-kind upstream (the
// monolith's own URLs and XML) be compared with a side speaking the new
// contract. It is keyed by route name (Options.Mappings). Routes between
// "acl" and "new" upstreams need none: both already speak the contract.
// The gateway declares it and never implements it: a migration supplies
// its own (the demo's is acl/shadowmap.ProductDetail, wired in cmd/ficus).
//
// A Mapping is called on shadow workers only, never on the primary path, and
// concurrently: it must be safe for concurrent use.
type Mapping interface {
	// ToNew rewrites req, a copy of a request for the legacy, in place into
	// the new contract's request asking the same thing. It returns false
	// when the request has no counterpart (the exchange is skipped).
	ToNew(req *fasthttp.Request) bool
	// ToLegacy is ToNew's reverse, for routes served by the new side and
	// shadowed to the legacy.
	ToLegacy(req *fasthttp.Request) bool
	// Normalise turns a legacy answer into the new contract's status and
	// JSON body. An error means the legacy answer could not be read in the
	// contract's terms; the exchange counts as an error.
	Normalise(status int, body []byte) (int, []byte, error)
}
