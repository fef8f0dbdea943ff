// Package webhook signs and verifies Ficus webhook deliveries in the
// Standard Webhooks style (https://www.standardwebhooks.com): three headers,
//
//	webhook-id:        the event's eventId (the same on every retry)
//	webhook-timestamp: Unix seconds when this attempt was signed
//	webhook-signature: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))
//
// where body is the exact bytes of the request body. A receiver verifies
// the signature over the body bytes it received (before parsing them) and
// refuses timestamps outside its replay window (DefaultTolerance), so a
// captured delivery cannot be replayed later.
//
// The package uses the standard library only: consumers in Go may copy
// Verify and Key as they are (docs/contracts.md has the recipe).
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The delivery headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is the replay window: a receiver accepts a delivery
// whose webhook-timestamp is at most this far from its own clock, in
// either direction (clocks drift).
const DefaultTolerance = 5 * time.Minute

// secretPrefix marks a secret in the Standard Webhooks format, whose key
// is the base64 after the prefix.
const secretPrefix = "whsec_"

// Key returns the HMAC key of a configured secret: for "whsec_<base64>"
// (the Standard Webhooks format, which their libraries expect) the decoded
// bytes, for anything else the secret's own bytes. An empty secret, or a
// whsec_ one that is not base64, is an error.
func Key(secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("webhook secret is empty")
	}
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(k) == 0 {
			return nil, errors.New("webhook secret starts with whsec_ but the rest is not base64")
		}
		return k, nil
	}
	return []byte(secret), nil
}

// Sign returns the webhook-signature value of one delivery: "v1," + the
// base64 HMAC-SHA256 of id.timestamp.body, timestamp in Unix seconds.
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Errors of Verify; each is wrapped with detail.
var (
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrBadTimestamp   = errors.New("webhook: webhook-timestamp is not Unix seconds")
	ErrOutsideWindow  = errors.New("webhook: timestamp outside the replay window")
	ErrBadSignature   = errors.New("webhook: no signature matches")
)

// Verify checks one delivery: the headers are present, the timestamp is
// within tolerance of now (<= 0 means DefaultTolerance), and one of the
// space-separated v1 signatures matches body under key (compared in
// constant time). body must be the raw bytes received. Deduplicate by
// webhook-id afterwards: a verified delivery may still be a retry.
func Verify(key []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTimestamp, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sent := time.Unix(secs, 0)
	if d := now.Sub(sent); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, now %s, window ±%s", ErrOutsideWindow,
			sent.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), tolerance)
	}
	want := []byte(Sign(key, id, sent, body))
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrBadSignature
}
