// Package acl is the anti-corruption layer between the legacy shop monolith
// and the new services. It is the only package that understands the legacy's
// wire format: Go mirrors of its XML documents and form posts (wire.go), pure
// translators into the new contract (translate.go) and a resilient HTTP
// client for it (client.go).
//
// Everything the legacy sends is checked, not trusted: an unknown status
// code, category, currency, date or money format is an explicit error, never
// a silent default, because a wrong default would be copied into the new
// stores by the sync and only noticed weeks later by reconcile.
//
// Sub-packages build on it: acl/backend serves the new contract from the
// legacy, acl/dualrun keeps both stores in step during a migration, and
// acl/reconcile compares them.
package acl
