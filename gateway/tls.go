package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/ficus-gw/ficus/gateway/tlsreload"
)

// loadCertificates loads the listeners' certificates (tls, admin.tls).
func (g *Gateway) loadCertificates() error {
	var err error
	if t := g.cfg.TLS; t.Enabled() {
		if g.pubCert, err = tlsreload.Load(t.CertFile, t.KeyFile, t.ReloadInterval, g.log.With("listener", "public")); err != nil {
			return fmt.Errorf("gateway: tls: %w", err)
		}
	}
	if t := g.cfg.Admin.TLS; t.Enabled() {
		if g.admCert, err = tlsreload.Load(t.CertFile, t.KeyFile, t.ReloadInterval, g.log.With("listener", "admin")); err != nil {
			return fmt.Errorf("gateway: admin.tls: %w", err)
		}
	}
	return nil
}

// serveTLS wraps the listeners that serve HTTPS and keeps their
// certificates reloading until ctx ends.
func (g *Gateway) serveTLS(ctx context.Context, public, admin net.Listener) (net.Listener, net.Listener) {
	if g.pubCert != nil {
		public = tls.NewListener(public, g.pubCert.Config())
		go func() { _ = g.pubCert.Run(ctx) }()
	}
	if g.admCert != nil {
		admin = tls.NewListener(admin, g.admCert.Config())
		go func() { _ = g.admCert.Run(ctx) }()
	}
	return public, admin
}
