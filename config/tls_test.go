package config

import (
	"strings"
	"testing"
)

func TestTLSValidation(t *testing.T) {
	t.Parallel()
	base := "upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\n"
	_, err := Parse([]byte(base + "tls: {certFile: /nonexistent/tls.crt, keyFile: /nonexistent/tls.key}\nadmin: {tls: {certFile: a.crt}}\n"))
	for _, want := range []string{"tls: certificate and key do not load", "admin.tls.keyFile: is required with certFile"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	c, err := Parse([]byte(base))
	if err != nil || c.TLS.Enabled() || c.Admin.TLS.Enabled() {
		t.Fatalf("TLS is off by default: %v %+v", err, c.TLS)
	}
}
