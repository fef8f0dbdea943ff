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
		{"escaped quote kept raw", enc(`{"sub":"d\"q"}`), `d\"q`},
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

// FuzzTopLevelString: never panics, and for valid JSON objects whose "sub"
// is a plain string it agrees with encoding/json.
func FuzzTopLevelString(f *testing.F) {
	for _, s := range []string{`{"sub":"a"}`, `{"a":[{"b":{}}],"sub":"x y"}`, `{"sub":`, `{"a":"\`, `{}`, `[`, `{"a":[[[[[[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got := topLevelString(doc, "sub")
		var m map[string]any
		if json.Unmarshal(doc, &m) != nil {
			return
		}
		want, ok := m["sub"].(string)
		if !ok || strings.ContainsAny(want, "\\\"") || strings.Count(string(doc), `"sub"`) != 1 {
			return
		}
		if got == nil {
			// Deep nesting beyond maxJSONDepth is the only accepted miss.
			if strings.Count(string(doc), "[")+strings.Count(string(doc), "{") <= maxJSONDepth {
				t.Fatalf("missed sub %q in %s", want, doc)
			}
		}
		if got != nil && string(got) != want && !strings.Contains(string(got), "\\") {
			t.Fatalf("got %q, json says %q, doc %s", got, want, doc)
		}
	})
}
