// Package decide chooses, per request, which backend of a route serves it:
// an operator override, then the route's OpenFeature flag, then its sticky
// canary percent, in that order.
package decide

// Backend is one side of a route.
type Backend uint8

const (
	// Legacy is the route's legacy side (the monolith, or the ACL backend
	// serving the new contract from it).
	Legacy Backend = iota
	// New is the route's new service.
	New
)

var backendNames = [...]string{Legacy: "legacy", New: "new"}

// String returns "legacy" or "new" (the metric label and header value).
func (b Backend) String() string { return backendNames[b] }

// ParseBackend parses "legacy" or "new".
func ParseBackend(s string) (Backend, bool) {
	switch s {
	case "legacy":
		return Legacy, true
	case "new":
		return New, true
	}
	return Legacy, false
}

// Reason says why a backend was chosen; it is counted in
// ficus_decisions_total{reason}.
type Reason uint8

const (
	// ReasonDefault: nothing applied; the route's legacy side.
	ReasonDefault Reason = iota
	// ReasonOverride: a tester's valid override header.
	ReasonOverride
	// ReasonPinned: an operator pinned the route to one backend.
	ReasonPinned
	// ReasonFlag: the route's flag variant named the backend.
	ReasonFlag
	// ReasonCanary: the user's bucket fell inside (new) or outside (legacy)
	// the canary percent.
	ReasonCanary
	// ReasonFallback: the new side failed and legacy served a safe request.
	ReasonFallback
	// ReasonError: flag evaluation failed; the route's default served.
	ReasonError
	// ReasonAffinity: a retry of a write intent went to the side its
	// first attempt went to (routes[].affinity), against the decision.
	ReasonAffinity
)

var reasonNames = [...]string{
	ReasonDefault: "default", ReasonOverride: "override", ReasonPinned: "pinned",
	ReasonFlag: "flag", ReasonCanary: "canary", ReasonFallback: "fallback", ReasonError: "error",
	ReasonAffinity: "affinity",
}

// String returns the metric label of r.
func (r Reason) String() string { return reasonNames[r] }

// Decision is the outcome for one request. It is a small value: deciding
// must not allocate.
type Decision struct {
	Backend Backend
	Reason  Reason
}
