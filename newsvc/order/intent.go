package order

import "github.com/ficus-gw/ficus/contracts/api"

// IntentRef is the lineage of a client's intent, derived from its
// Idempotency-Key; the contract defines it (api.IntentRef), because the
// anti-corruption layer sends the same value to the legacy as ext_ref.
func IntentRef(key string) string { return api.IntentRef(key) }
