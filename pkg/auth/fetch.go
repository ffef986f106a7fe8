package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// Bounds on what an authorization server may send back: a hostile or
// broken one cannot make agentmesh read or keep without limit.
const (
	maxMetadataBytes      = 256 << 10
	maxJWKSBytes          = 256 << 10
	maxIntrospectionBytes = 64 << 10
	maxRedirects          = 3
	// DefaultHTTPTimeout bounds each request to an authorization server.
	DefaultHTTPTimeout = 10 * time.Second
)

// fetcher makes agentmesh's own requests to authorization servers:
// discovery, JWKS, introspection. Every URL, including redirect targets
// and URLs read from metadata, must be https (or http on loopback when
// auth.allow_loopback_issuers is set).
type fetcher struct {
	client        *http.Client
	allowLoopback bool
}

func newFetcher(c *http.Client, allowLoopback bool) *fetcher {
	f := &fetcher{allowLoopback: allowLoopback}
	if c == nil {
		c = &http.Client{Timeout: DefaultHTTPTimeout}
	} else {
		cp := *c
		c = &cp
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		return f.checkURL(req.URL.String())
	}
	f.client = c
	return f
}

func (f *fetcher) checkURL(u string) error {
	return config.CheckIssuerURL(u, f.allowLoopback)
}

// errNotFound: the document does not exist there (discovery tries the
// next well-known location).
var errNotFound = errors.New("not found")

func (f *fetcher) getJSON(ctx context.Context, u string, limit int64, v any) error {
	if err := f.checkURL(u); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	return f.do(req, limit, v)
}

// postForm posts form to u with HTTP Basic client authentication
// (RFC 6749 §2.3.1: the id and secret are form-urlencoded first).
func (f *fetcher) postForm(ctx context.Context, u string, form url.Values, clientID, secret string, limit int64, v any) error {
	if err := f.checkURL(u); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	return f.do(req, limit, v)
}

func (f *fetcher) do(req *http.Request, limit int64, v any) error {
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%s: reading the response: %w", req.URL.Redacted(), err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", req.URL.Redacted(), errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", req.URL.Redacted(), resp.StatusCode)
	}
	if int64(len(body)) > limit {
		return fmt.Errorf("%s: response larger than %d bytes", req.URL.Redacted(), limit)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: not the JSON expected: %w", req.URL.Redacted(), err)
	}
	return nil
}
