package webhook_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/contracts/webhook"
)

const (
	id   = "5f1d7a0e-4a47-4a55-9a0e-1f6f0c7b2d10"
	body = `{"type":"order.created"}`
)

var signedAt = time.Unix(1796083200, 0)

// The exact string signed is id.timestamp.body: these values were computed
// independently (Python's hmac over the same bytes), so the recipe in
// docs/contracts.md and this code agree.
func TestSignKnownVectors(t *testing.T) {
	if got, want := webhook.Sign([]byte("s3cr3t"), id, signedAt, []byte(body)), "v1,snZ5eGtiN1oBN0wHjp4sdM1F+czb1CGA6dvg09H37pg="; got != want {
		t.Errorf("raw secret: %s, want %s", got, want)
	}
	key, err := webhook.Key("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil || string(key) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("whsec_ key: %q, %v", key, err)
	}
	if got, want := webhook.Sign(key, id, signedAt, []byte(body)), "v1,+5FdcpCpZj4kbUbnpa0bmmMUeB3FSsm/GtxBFOhSoNs="; got != want {
		t.Errorf("whsec_ secret: %s, want %s", got, want)
	}
	for _, bad := range []string{"", "whsec_", "whsec_not base64!"} {
		if _, err := webhook.Key(bad); err == nil {
			t.Errorf("Key(%q) accepted", bad)
		}
	}
}

func headers(sig string, ts string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, ts)
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	key := []byte("s3cr3t")
	good := webhook.Sign(key, id, signedAt, []byte(body))
	ts := "1796083200"
	now := signedAt.Add(30 * time.Second)
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"valid", headers(good, ts), body, now, nil},
		{"valid among several (key rotation)", headers("v1,AAAA "+good, ts), body, now, nil},
		{"tampered body", headers(good, ts), `{"type":"order.cancelled"}`, now, webhook.ErrBadSignature},
		{"other id", func() http.Header { h := headers(good, ts); h.Set(webhook.HeaderID, "x"); return h }(), body, now, webhook.ErrBadSignature},
		{"timestamp moved into the window", headers(good, "1796083230"), body, now, webhook.ErrBadSignature},
		{"other secret", headers(webhook.Sign([]byte("other"), id, signedAt, []byte(body)), ts), body, now, webhook.ErrBadSignature},
		{"old timestamp (replay)", headers(good, ts), body, signedAt.Add(webhook.DefaultTolerance + time.Second), webhook.ErrOutsideWindow},
		{"timestamp from the future", headers(good, ts), body, signedAt.Add(-webhook.DefaultTolerance - time.Second), webhook.ErrOutsideWindow},
		{"edge of the window", headers(good, ts), body, signedAt.Add(webhook.DefaultTolerance), nil},
		{"timestamp not a number", headers(good, "2026-12-01"), body, now, webhook.ErrBadTimestamp},
		{"no signature", headers("", ts), body, now, webhook.ErrMissingHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(key, tc.header, []byte(tc.body), tc.now, 0)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
