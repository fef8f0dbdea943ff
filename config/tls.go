package config

import (
	"crypto/tls"
	"time"
)

// TLS serves a listener over HTTPS from PEM files. The files are checked
// for changes while the gateway runs: a changed, valid pair serves every
// new handshake from then on (connections already open keep theirs), an
// invalid one is logged and the previous pair keeps serving.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first. Empty (the
	// default): the listener speaks plain HTTP.
	CertFile string `yaml:"certFile"`
	// KeyFile is the PEM private key of CertFile's leaf. Required with
	// CertFile.
	KeyFile string `yaml:"keyFile"`
	// ReloadInterval is how often both files are checked for a change.
	// Default 10s.
	ReloadInterval time.Duration `yaml:"reloadInterval"`
}

// Enabled reports whether the listener serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

func (c *Config) applyTLSDefaults() {
	for _, t := range []*TLS{&c.TLS, &c.Admin.TLS} {
		if t.Enabled() && t.ReloadInterval == 0 {
			t.ReloadInterval = 10 * time.Second
		}
	}
}

// validateTLS checks that each configured pair is complete and loads: a
// gateway must not start, nor --check say valid, with a certificate that
// does not match its key.
func (c *Config) validateTLS(add func(path string, v any, format string, args ...any)) {
	for _, x := range []struct {
		path string
		t    TLS
	}{{"tls", c.TLS}, {"admin.tls", c.Admin.TLS}} {
		t := x.t
		if !t.Enabled() {
			continue
		}
		switch {
		case t.CertFile == "":
			add(x.path+".certFile", t.CertFile, "is required with keyFile")
		case t.KeyFile == "":
			add(x.path+".keyFile", t.KeyFile, "is required with certFile")
		default:
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				add(x.path, t.CertFile, "certificate and key do not load: %v", err)
			}
		}
		if t.ReloadInterval < 0 {
			add(x.path+".reloadInterval", t.ReloadInterval, "must not be negative")
		}
	}
}
