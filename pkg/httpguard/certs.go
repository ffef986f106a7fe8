package httpguard

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"runtime"
	"sync"
)

// certReloader serves the certificate in certFile/keyFile and re-reads the
// pair when either file changes on disk (renewal by certbot, cert-manager,
// a rename over the old file): tls.Config.GetCertificate stats both files
// on every handshake (two stat calls, nothing next to a handshake) and
// loads them again when the size, modification time or file identity
// differ. A pair that fails to load (the key not yet written, a mismatch,
// unsafe permissions) is reported once and the last good certificate is
// kept.
type certReloader struct {
	certFile, keyFile string
	warn              func(string)

	mu     sync.Mutex
	cert   *tls.Certificate
	stamp  [2]os.FileInfo
	failed [2]os.FileInfo // the stamp of the last pair that failed
}

func newCertReloader(certFile, keyFile string, warn func(string)) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, warn: warn}
	stamp, err := c.stat()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamp); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) stat() ([2]os.FileInfo, error) {
	var st [2]os.FileInfo
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, fmt.Errorf("TLS %s: %w", []string{"certificate", "key"}[i], err)
		}
		st[i] = fi
	}
	return st, nil
}

func sameStamp(a, b [2]os.FileInfo) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()) || !os.SameFile(a[i], b[i]) {
			return false
		}
	}
	return true
}

func (c *certReloader) load(stamp [2]os.FileInfo) error {
	if err := checkPEMModes(c.certFile, stamp[0], c.keyFile, stamp[1]); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

// checkPEMModes refuses files others may write (anyone who can write them
// can impersonate the server) and a key others may read.
func checkPEMModes(certFile string, cert os.FileInfo, keyFile string, key os.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	for _, f := range []struct {
		name string
		fi   os.FileInfo
	}{{certFile, cert}, {keyFile, key}} {
		if m := f.fi.Mode().Perm(); m&0o002 != 0 {
			return fmt.Errorf("TLS file %s is writable by others (mode %04o); run: chmod o-w %s", f.name, m, f.name)
		}
	}
	if m := key.Mode().Perm(); m&0o004 != 0 {
		return fmt.Errorf("TLS key %s is readable by others (mode %04o); run: chmod o-rw %s", keyFile, m, keyFile)
	}
	return nil
}

// GetCertificate is the tls.Config hook.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp, err := c.stat()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && !sameStamp(stamp, c.stamp) && !sameStamp(stamp, c.failed) {
		if err := c.load(stamp); err != nil {
			c.failed = stamp
			c.warn(fmt.Sprintf("%v; still serving the previous certificate", err))
		}
	}
	return c.cert, nil
}

// loadCertPool reads the PEM CA file that signs client certificates.
func loadCertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("TLS client CA %s holds no PEM certificate", file)
	}
	return pool, nil
}

// callerName maps a verified client certificate to a caller name: its URI,
// DNS and e-mail SANs in that order, then its subject CN; the first that
// client_certs lists wins.
func callerName(cert *x509.Certificate, names map[string]string) (string, bool) {
	var ids []string
	for _, u := range cert.URIs {
		ids = append(ids, u.String())
	}
	ids = append(ids, cert.DNSNames...)
	ids = append(ids, cert.EmailAddresses...)
	if cert.Subject.CommonName != "" {
		ids = append(ids, cert.Subject.CommonName)
	}
	for _, id := range ids {
		if n, ok := names[id]; ok {
			return n, true
		}
	}
	return "", false
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or later, the
// reloading certificate, and with a client CA, mutual TLS at the
// handshake: required (a client without a certificate it signed cannot
// connect), or, when bearer tokens can authenticate a client instead,
// verified if given.
func tlsConfig(certs *certReloader, clientCAs *x509.CertPool, optional bool) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	if clientCAs != nil {
		c.ClientCAs, c.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
		if optional {
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return c
}

// CheckTLSFiles loads the certificate pair and client CA as serving would,
// so that `serve` can refuse a bad one before it opens any state.
func CheckTLSFiles(certFile, keyFile, clientCA string) error {
	if certFile != "" {
		if _, err := newCertReloader(certFile, keyFile, func(string) {}); err != nil {
			return err
		}
	}
	if clientCA != "" {
		if _, err := loadCertPool(clientCA); err != nil {
			return err
		}
	}
	return nil
}
