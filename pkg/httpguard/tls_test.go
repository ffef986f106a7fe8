package httpguard

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// keyPair is a generated certificate and its key.
type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// newCert makes a certificate for cn, signed by parent (self-signed when
// parent is nil); isCA makes it a CA, dns adds DNS SANs.
func newCert(t *testing.T, cn string, parent *keyPair, isCA bool, dns ...string) *keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         isCA, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    dns,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &keyPair{cert, key, der}
}

func (k *keyPair) pem(t *testing.T) (certPEM, keyPEM []byte) {
	kb, err := x509.MarshalECPrivateKey(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func (k *keyPair) tls(t *testing.T) tls.Certificate {
	c, kk := k.pem(t)
	tc, err := tls.X509KeyPair(c, kk)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// writePair writes the pair to dir/cert.pem and dir/key.pem (0600) by
// renaming over the old files, as certbot-like tools do.
func writePair(t *testing.T, dir string, k *keyPair) (certFile, keyFile string) {
	t.Helper()
	c, kk := k.pem(t)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string][]byte{certFile: c, keyFile: kk} {
		tmp := f + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// serveTLS runs a guarded TLS server on loopback with handler behind it.
func serveTLS(t *testing.T, o ServerOptions, handler http.Handler) string {
	t.Helper()
	if o.Guard.Sessions == nil {
		o.Guard.Sessions = NewSessions()
	}
	o.Guard.Endpoint, o.Guard.MaxBody, o.Guard.MaxSessions = "/mcp", 1<<20, 10
	o.ReadTimeout, o.IdleTimeout = 5*time.Second, 5*time.Second
	srv, err := NewServer(handler, o)
	if err != nil {
		t.Fatal(err)
	}
	srv.HTTP.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.HTTP.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// TestTLSCertificateReload: replacing the certificate files on disk
// changes the certificate the next handshake presents, without a restart;
// a broken pair keeps the last good one.
func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	a, b := newCert(t, "server-a", nil, false), newCert(t, "server-b", nil, false)
	certFile, keyFile := writePair(t, dir, a)
	var warnings []string
	addr := serveTLS(t, ServerOptions{TLSCert: certFile, TLSKey: keyFile, Warn: func(m string) { warnings = append(warnings, m) }},
		http.NotFoundHandler())
	roots := x509.NewCertPool()
	roots.AddCert(a.cert)
	roots.AddCert(b.cert)
	presented := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := presented(); got != "server-a" {
		t.Fatalf("first handshake presented %q", got)
	}
	writePair(t, dir, b)
	if got := presented(); got != "server-b" {
		t.Fatalf("after replacing the files the handshake presented %q, want server-b", got)
	}
	// A key that does not match (half-way through a renewal): the last
	// good certificate stays, with one warning.
	c, _ := a.pem(t)
	os.WriteFile(certFile, c, 0o600)
	if got := presented(); got != "server-b" {
		t.Fatalf("with a mismatched pair the handshake presented %q, want the last good server-b", got)
	}
	presented()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "still serving the previous certificate") {
		t.Errorf("warnings %q", warnings)
	}
	// Unsafe permissions are refused at start.
	os.Chmod(keyFile, 0o644)
	if err := CheckTLSFiles(certFile, keyFile, ""); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a key readable by others: %v", err)
	}
	os.Chmod(keyFile, 0o600)
	os.Chmod(certFile, 0o666)
	if err := CheckTLSFiles(certFile, keyFile, ""); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("a certificate writable by others: %v", err)
	}
}

// TestMutualTLS: with client_ca, a client certificate it signed and
// listed in client_certs (by SAN or CN) becomes the request's caller;
// a signed but unlisted one gets 403; no certificate, or one from another
// CA, fails the handshake.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCert(t, "clients-ca", nil, true)
	caPEM, _ := ca.pem(t)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, caPEM, 0o600)
	server := newCert(t, "server", nil, false)
	certFile, keyFile := writePair(t, dir, server)
	alice := newCert(t, "alice", ca, false)
	ci := newCert(t, "build-17", ca, false, "ci.example.com")
	mallory := newCert(t, "mallory", ca, false)
	stranger := newCert(t, "alice", newCert(t, "other-ca", nil, true), false)

	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, caller.FromContext(r.Context()).String())
	})
	addr := serveTLS(t, ServerOptions{TLSCert: certFile, TLSKey: keyFile, ClientCA: caFile,
		Guard: Options{ClientCerts: map[string]string{"alice": "alice-laptop", "ci.example.com": "ci-bot"}}}, echo)
	roots := x509.NewCertPool()
	roots.AddCert(server.cert)
	get := func(client *keyPair) (int, string, error) {
		cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
		if client != nil {
			cfg.Certificates = []tls.Certificate{client.tls(t)}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + addr + "/whoami")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for _, tt := range []struct {
		name   string
		client *keyPair
		code   int
		body   string
	}{
		{"listed CN", alice, 200, "mtls:alice-laptop"},
		{"listed DNS SAN", ci, 200, "mtls:ci-bot"},
		{"signed, unlisted", mallory, 403, "maps to no caller"},
	} {
		code, body, err := get(tt.client)
		if err != nil || code != tt.code || !strings.Contains(body, tt.body) {
			t.Errorf("%s: %d %q %v, want %d %q", tt.name, code, body, err, tt.code, tt.body)
		}
	}
	for name, client := range map[string]*keyPair{"no certificate": nil, "another CA": stranger} {
		if code, body, err := get(client); err == nil {
			t.Errorf("%s: %d %q, want a failed handshake", name, code, body)
		}
	}

	// With bearer tokens as another way in (ClientCertOptional), a client
	// without a certificate connects and names no caller (the token
	// check behind the guard does); a certificate it does present must
	// still verify.
	addr = serveTLS(t, ServerOptions{TLSCert: certFile, TLSKey: keyFile, ClientCA: caFile, ClientCertOptional: true,
		Guard: Options{ClientCerts: map[string]string{"alice": "alice-laptop"}}}, echo)
	if code, body, err := get(nil); err != nil || code != 200 || body != "(none)" {
		t.Errorf("optional, no certificate: %d %q %v, want 200 and no caller", code, body, err)
	}
	if code, body, err := get(alice); err != nil || code != 200 || body != "mtls:alice-laptop" {
		t.Errorf("optional, listed certificate: %d %q %v", code, body, err)
	}
	// Go's client sends only a certificate the server's CA list names:
	// force the stranger's out.
	forced := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c := stranger.tls(t)
		return &c, nil
	}}
	conn, err := tls.Dial("tcp", addr, forced)
	if err == nil {
		err = conn.Handshake()
		if err == nil {
			_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the client's Finished
		}
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("optional, a certificate of another CA: %v, want a refused handshake", err)
	}
}
