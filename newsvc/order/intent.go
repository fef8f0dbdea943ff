package order

import (
	"crypto/sha256"
	"encoding/hex"
)

// IntentRef is the lineage of a client's intent, derived from its
// Idempotency-Key: "ik-" and the hex of the first 16 bytes of the key's
// SHA-256. The order service records it on every order it books, and the
// anti-corruption layer sends the same value to the legacy as ext_ref, so one
// key names one intent on both sides and reconcile can find an intent booked
// twice. Keys may be 128 characters with spaces, ext_ref at most 64 without:
// hence the hash. It never has the shape of an order id (a UUID), so it
// cannot be mistaken for a write-back reference.
func IntentRef(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "ik-" + hex.EncodeToString(sum[:16])
}
