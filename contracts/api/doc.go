// Package api is the contract of the new services as Go types: the wire
// shapes of the published OpenAPI documents (contracts/published/*.yaml),
// with their JSON tags, and the request rules that belong to the contract
// rather than to one server of it (how a PlaceOrderRequest is validated and
// hashed, what a SKU is, how a product list is paged and what a cursor
// looks like).
//
// Every provider of the contract uses these types: the Catalog and Order
// services (newsvc/catalog, newsvc/order), the anti-corruption layer's
// translators and its backend, which serves the same contract from the
// legacy (acl, acl/backend), and the tests that decode responses. There is
// one definition, so the providers cannot drift apart field by field; the
// package's tests hold the types to the published documents.
//
// The package is hand-written, not generated: it imports only the standard
// library, so depending on it pulls in no server, framework or database.
// Field order matters: encoding/json writes fields in declaration order, and
// the ACL's golden files and the services' idempotent replays are compared
// byte for byte.
package api
