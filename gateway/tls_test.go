package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// selfSigned returns a PEM certificate for 127.0.0.1 named cn, its key,
// and the parsed certificate.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

// replace writes b to path atomically, as an operator's tooling should.
func replace(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestTLSCertificateReloadsWithoutDroppingConnections: the public listener
// serves HTTPS; a replaced certificate serves new handshakes while an open
// keep-alive connection keeps working on the old one; a broken pair is
// ignored.
func TestTLSCertificateReloadsWithoutDroppingConnections(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certA, keyA, a := selfSigned(t, "ficus-a")
	certB, keyB, b := selfSigned(t, "ficus-b")
	replace(t, certFile, certA)
	replace(t, keyFile, keyA)
	up := newUpstream(t, ok("hello"))
	cfg := testConfig(t, map[string]string{"legacy": up.URL}, nil, func(c *config.Config) {
		c.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile, ReloadInterval: 50 * time.Millisecond}
	})
	r := start(t, cfg, nil)
	pool := x509.NewCertPool()
	pool.AddCert(a)
	pool.AddCert(b)
	client := func(keepAlive bool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: !keepAlive}}
	}
	served := func(c *http.Client) (cn string) {
		t.Helper()
		resp, err := c.Get("https://" + r.addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drained: the connection goes back to the pool
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil {
			t.Fatalf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	open := client(true)
	if cn := served(open); cn != "ficus-a" {
		t.Fatalf("served %s, want ficus-a", cn)
	}
	if _, err := http.Get(r.url + "/x"); err == nil {
		t.Fatal("the HTTPS listener answered plain HTTP")
	}

	replace(t, certFile, certB)
	replace(t, keyFile, keyB)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cn := served(client(false)); cn == "ficus-b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate was not served within 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	// The keep-alive connection opened before the reload still works, on
	// the certificate it was opened with: it was not dropped.
	if cn := served(open); cn != "ficus-a" {
		t.Fatalf("the open connection now shows %s: it was re-established, not kept", cn)
	}

	// A broken pair is ignored: the last good one keeps serving.
	replace(t, keyFile, keyA) // B's certificate with A's key
	deadline = time.Now().Add(10 * time.Second)
	for r.gw.pubCert.Failures() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the mismatched pair was not seen (and counted) within 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if cn := served(client(false)); cn != "ficus-b" {
		t.Fatalf("after a mismatched pair, served %s, want ficus-b", cn)
	}
}
