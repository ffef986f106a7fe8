package httpguard

import (
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// ServerOptions configure the http.Server behind the guard.
type ServerOptions struct {
	Guard Options
	// ReadTimeout bounds reading a whole request, body included; the
	// guard lifts it once a request is in, for the handler's sake.
	ReadTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration
	// TLSCert and TLSKey (PEM) turn TLS on; ClientCA requires client
	// certificates it signed.
	TLSCert, TLSKey, ClientCA string
	// ClientCertOptional lets a client without a certificate connect
	// (tls.VerifyClientCertIfGiven) when bearer tokens authenticate it
	// instead; a certificate it presents must still verify.
	ClientCertOptional bool
	// Warn is told about certificate reloads that failed.
	Warn func(string)
}

// FromConfig turns the http: configuration into server options; resolve
// makes a configured path absolute (config.Config.ResolvePath).
func FromConfig(h config.HTTP, endpoint string, sessions *Sessions, resolve func(string) string) ServerOptions {
	o := ServerOptions{
		Guard: Options{
			Endpoint: endpoint, Sessions: sessions, MaxBody: h.MaxBody, WriteTimeout: h.WriteTimeout.D(),
			SessionIdleTTL: h.SessionIdleTTL.D(), MaxSessions: h.MaxSessions, AllowedOrigins: h.AllowedOrigins,
			TrustedProxy: h.TrustedProxy,
		},
		ReadTimeout: h.ReadTimeout.D(),
		IdleTimeout: h.IdleTimeout.D(),
	}
	if h.TLSCert != "" {
		o.TLSCert, o.TLSKey = resolve(h.TLSCert), resolve(h.TLSKey)
	}
	if h.ClientCA != "" {
		o.ClientCA = resolve(h.ClientCA)
		o.Guard.ClientCerts = map[string]string{}
		for k, v := range h.ClientCerts {
			o.Guard.ClientCerts[k] = v
		}
	}
	return o
}

// Server is the guarded HTTP server.
type Server struct {
	HTTP *http.Server
}

// NewServer puts a Guard in front of next and sets the server's limits:
// ReadHeaderTimeout (at most 10s) and ReadTimeout bound slow senders,
// IdleTimeout idle connections; WriteTimeout stays unset because the
// guard gives each write its own deadline instead (see deadlineWriter).
// With a certificate, TLS files are checked and loaded now: a start with
// a bad certificate fails before serving.
func NewServer(next http.Handler, o ServerOptions) (*Server, error) {
	if o.Guard.Sessions == nil {
		return nil, errors.New("httpguard: no session registry")
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	srv := &http.Server{
		Handler:           New(next, o.Guard),
		ReadHeaderTimeout: min(10*time.Second, o.ReadTimeout),
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
	}
	if o.TLSCert != "" {
		certs, err := newCertReloader(o.TLSCert, o.TLSKey, o.Warn)
		if err != nil {
			return nil, err
		}
		var pool *x509.CertPool
		if o.ClientCA != "" {
			if pool, err = loadCertPool(o.ClientCA); err != nil {
				return nil, err
			}
		}
		srv.TLSConfig = tlsConfig(certs, pool, o.ClientCertOptional)
	}
	return &Server{HTTP: srv}, nil
}

// TLS reports whether the server speaks TLS.
func (s *Server) TLS() bool { return s.HTTP.TLSConfig != nil }

// Serve serves on ln (TLS with HTTP/2 when configured) until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.TLS() {
		err = s.HTTP.ServeTLS(ln, "", "")
	} else {
		err = s.HTTP.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
