// Package tlsreload serves a certificate and key from PEM files and picks up
// a replaced pair without a restart: each new TLS handshake gets the pair
// loaded last, connections already open keep theirs, and a pair that does
// not load is logged and ignored (the previous one keeps serving).
package tlsreload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Certificate is a reloading certificate. Create it with Load.
type Certificate struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]
	sum               [sha256.Size]byte // of the files last seen (valid or not)
	reloads, failures atomic.Uint64
}

// Load reads the pair once; an error here means the listener must not
// start. interval is how often Run checks the files (at least 100ms).
func Load(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*Certificate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, interval: max(interval, 100*time.Millisecond), log: log}
	cert, sum, err := c.read()
	if err != nil {
		return nil, err
	}
	c.cur.Store(cert)
	c.sum = sum
	return c, nil
}

func (c *Certificate) read() (*tls.Certificate, [sha256.Size]byte, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("reading the TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("reading the TLS key: %w", err)
	}
	sum := sha256.Sum256(bytes.Join([][]byte{certPEM, keyPEM}, []byte{0}))
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, sum, fmt.Errorf("TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	return &cert, sum, nil
}

// Current returns the pair that new handshakes get.
func (c *Certificate) Current() *tls.Certificate { return c.cur.Load() }

// Reloads and Failures count accepted and rejected reloads since Load.
func (c *Certificate) Reloads() uint64  { return c.reloads.Load() }
func (c *Certificate) Failures() uint64 { return c.failures.Load() }

// Config returns a server configuration (TLS 1.2 or newer) whose
// handshakes get the current pair.
func (c *Certificate) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// Check reloads the pair if the files changed since they were last seen.
// A pair that does not load is logged once per change.
func (c *Certificate) Check() {
	cert, sum, err := c.read()
	if sum == c.sum {
		return // unchanged (an unreadable file reads as the zero sum: logged once)
	}
	c.sum = sum
	if err != nil {
		c.failures.Add(1)
		c.log.Error("TLS certificate not reloaded; the previous one keeps serving", "cert", c.certFile, "key", c.keyFile, "err", err)
		return
	}
	c.cur.Store(cert)
	c.reloads.Add(1)
	attrs := []any{"cert", c.certFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	c.log.Info("TLS certificate reloaded", attrs...)
}

// Run checks the files every interval until ctx ends. Check and Run must
// not be called concurrently.
func (c *Certificate) Run(ctx context.Context) error {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.Check()
		}
	}
}
