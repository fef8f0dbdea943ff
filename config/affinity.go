package config

import (
	"net/http"
	"time"
)

// WriteAffinity makes every retry of one write intent go to the side that
// received its first attempt (see gateway/intent). A write's intent is named
// by a request header, normally the Idempotency-Key. Without it, a retry
// after a canary move, a fallback or a pin flip can reach the other side and
// book the same order twice.
type WriteAffinity struct {
	// Header names the intent. Default "Idempotency-Key". Writes without it
	// are routed as usual (the services refuse them anyway).
	Header string `yaml:"header"`
	// TTL is how long a key stays bound to its side, counted from its first
	// attempt. It must outlast the services' own idempotency windows.
	// Default 48h.
	TTL time.Duration `yaml:"ttl"`
}

// Intents is where the write-intent ledger lives. With a PostgreSQL control
// plane (controlPlane.postgres) the ledger is a table in that database,
// shared by every replica of the fleet, and DB is not used.
type Intents struct {
	// DB is the SQLite file of the ledger when the control plane is
	// SQLite; every gateway on one host that opens the same file shares
	// it. Default "data/ficus-intents.db".
	DB string `yaml:"db"`
}

// HasWriteAffinity reports whether any route binds write intents to a side.
func (c *Config) HasWriteAffinity() bool {
	for _, r := range c.Routes {
		if r.Affinity != nil {
			return true
		}
	}
	return false
}

func (c *Config) applyIntentDefaults() {
	if c.Intents.DB == "" {
		c.Intents.DB = "data/ficus-intents.db"
	}
	for i := range c.Routes {
		if a := c.Routes[i].Affinity; a != nil {
			if a.Header == "" {
				a.Header = "Idempotency-Key"
			}
			if a.TTL == 0 {
				a.TTL = 48 * time.Hour
			}
		}
	}
}

func validateAffinity(p string, r Route, add func(string, any, string, ...any)) {
	a := r.Affinity
	if a == nil {
		return
	}
	if r.New == "" {
		add(p+".affinity", "set", "needs a new upstream (routes[].new): affinity binds a key to one of two sides")
	}
	if a.TTL < time.Hour {
		add(p+".affinity.ttl", a.TTL, "must be at least 1h: a key must stay bound for as long as clients retry it")
	}
	if http.CanonicalHeaderKey(a.Header) == "" || !validHeaderName(a.Header) {
		add(p+".affinity.header", a.Header, "is not a valid header name")
	}
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
