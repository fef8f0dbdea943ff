package decide

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestJWTSubject(t *testing.T) {
	t.Parallel()
	enc := func(payload string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	tests := []struct {
		name, token, want string
	}{
		{"plain", enc(`{"sub":"alice"}`), "alice"},
		{"after nested objects", enc(`{"a":{"sub":"no","b":[1,{"sub":"no"}]},"n":-1.5e3,"t":true,"z":null,"sub":"bob"}`), "bob"},
		{"whitespace", enc("{ \"sub\" :\n \"carol\" }"), "carol"},
		{"escapes decoded", enc(`{"sub":"d\"q\u00e9\/"}`), `d"qé/`},
		{"invalid UTF-8 as encoding/json reads it", enc("{\"sub\":\"a\xcab\"}"), "a\uFFFDb"},
		{"lone surrogate", enc(`{"sub":"\ud800x"}`), "\uFFFDx"},
		{"surrogate pair", enc(`{"sub":"\ud83d\ude00"}`), "\U0001F600"},
		{"bad escape", enc(`{"sub":"\q"}`), ""},
		{"subject too long", enc(`{"sub":"` + strings.Repeat("s", maxSubject+1) + `"}`), ""},
		{"padded payload", strings.Replace(enc(`{"sub":"eve"}`), ".sig", "", 1) + "==.sig", "eve"},
		{"numeric sub ignored", enc(`{"sub":42}`), ""},
		{"no sub", enc(`{"iss":"x"}`), ""},
		{"sub only inside a string", enc(`{"x":"\"sub\":\"mallory\""}`), ""},
		{"not a JWT", "opaque-token", ""},
		{"bad base64", "a.!!!.b", ""},
		{"array payload", enc(`["sub","x"]`), ""},
		{"too large", enc(`{"pad":"` + strings.Repeat("x", maxJWTPayload) + `","sub":"big"}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf [maxJWTPayload]byte
			if got := string(jwtSubject([]byte(tc.token), buf[:])); got != tc.want {
				t.Fatalf("jwtSubject = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzTopLevelString: never panics, and for valid JSON objects with one
// "sub" member holding a string, the user key (decodeString of what
// topLevelString finds) is exactly encoding/json's value of it. The seed
// in testdata/fuzz is the input that found raw-byte keys (invalid UTF-8).
func FuzzTopLevelString(f *testing.F) {
	for _, s := range []string{`{"sub":"a"}`, `{"a":[{"b":{}}],"sub":"x y"}`, `{"sub":`, `{"a":"\`, `{}`, `[`, `{"a":[[[[[[`,
		"{\"sub\":\"\xca\"}", `{"sub":"\ud800\udc00\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		raw := topLevelString(doc, "sub")
		var got []byte
		if raw != nil {
			var out [maxSubject]byte
			var ok bool
			if got, ok = decodeString(out[:0], raw); !ok {
				got = nil
			}
		}
		var m map[string]any
		if json.Unmarshal(doc, &m) != nil {
			return
		}
		want, ok := m["sub"].(string)
		if !ok || strings.Count(string(doc), `"sub"`) != 1 || len(want) > maxSubject {
			return
		}
		if got == nil {
			// Deep nesting beyond maxJSONDepth is the only accepted miss.
			if strings.Count(string(doc), "[")+strings.Count(string(doc), "{") <= maxJSONDepth {
				t.Fatalf("missed sub %q in %s", want, doc)
			}
			return
		}
		if string(got) != want {
			t.Fatalf("got %q, json says %q, doc %s", got, want, doc)
		}
	})
}

// TestJWTTwinsLandOnTheSameSide: a token whose "sub" holds bytes that are
// not UTF-8 and the token holding what encoding/json reads from it (the
// escaped or literal U+FFFD) are one user: same key, same bucket.
func TestJWTTwinsLandOnTheSameSide(t *testing.T) {
	t.Parallel()
	enc := func(payload string) []byte {
		return []byte("eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig")
	}
	var b1, b2, b3 [maxJWTPayload]byte
	k1 := jwtSubject(enc("{\"sub\":\"user-\xca\xfe\"}"), b1[:])
	k2 := jwtSubject(enc(`{"sub":"user-\ufffd\ufffd"}`), b2[:])
	k3 := jwtSubject(enc("{\"sub\":\"user-\uFFFD\uFFFD\"}"), b3[:])
	if len(k1) == 0 || string(k1) != string(k2) || string(k2) != string(k3) {
		t.Fatalf("keys differ: %q %q %q", k1, k2, k3)
	}
	for _, cohort := range []string{"checkout", "products"} {
		if bucket(k1, cohort) != bucket(k2, cohort) || bucket(k2, cohort) != bucket(k3, cohort) {
			t.Fatalf("cohort %s: twins in different buckets", cohort)
		}
	}
}
