package identity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// ReadCredential returns the raw current credential stored in the state
// directory (shared by every process of the identity).
func ReadCredential(d *state.Dir) (string, error) {
	b, err := os.ReadFile(d.Join(state.CredentialFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w in %s: one is issued when `agentmesh serve` starts (or `agentmesh identity create`)", ErrNoCredential, d.Path)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// WriteCredential stores c as the current credential, atomically.
func WriteCredential(d *state.Dir, c *Credential) error {
	return state.WriteFileAtomic(d.Join(state.CredentialFile), []byte(c.Token+"\n"))
}

// Rotator keeps a valid credential at hand. It renews the credential once
// RotateAt of its lifetime has passed (with jitter, so several processes
// sharing a state directory do not all renew at the same instant), adopts a
// credential another process renewed first, and keeps the previous
// credential valid until it expires.
type Rotator struct {
	Dir      *state.Dir
	Issuer   *Issuer
	Verifier *Verifier
	// RotateAt is the fraction of the lifetime after which to renew (0.5).
	RotateAt float64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnIssue is called after this process issued and stored a credential
	// (the audit log records it).
	OnIssue func(*Credential) error

	mu       sync.Mutex
	current  *Credential
	previous *Credential
	jitter   float64 // fraction of the lifetime, chosen once per process
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// renewAt is when c should be replaced.
func (r *Rotator) renewAt(c *Credential) time.Time {
	if r.jitter == 0 {
		r.jitter = rand.Float64() * 0.1
	}
	life := c.Claims.Lifetime()
	frac := max(r.RotateAt-r.jitter, 0.05)
	return c.Claims.IssuedAtTime().Add(time.Duration(float64(life) * frac))
}

// Current returns a valid credential, renewing it when it is past its
// rotation point, and failing closed when none can be had.
func (r *Rotator) Current() (*Credential, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	// The current credential was verified when it was issued or adopted;
	// per call only its time is checked (an Ed25519 verify costs ~50 µs).
	if r.current != nil && now.Before(r.renewAt(r.current)) && !now.Before(r.current.Claims.IssuedAtTime().Add(-MaxClockSkew)) && now.Before(r.current.Claims.ExpiresAt()) {
		return r.current, nil
	}
	// Another process may have renewed it already. A stored credential
	// granting other scopes than the issuer would (agentmesh.yaml changed
	// since it was issued) is replaced, not adopted: configuration takes
	// effect at once.
	if tok, err := ReadCredential(r.Dir); err == nil {
		if c, err := r.Verifier.Verify(tok, now); err == nil && now.Before(r.renewAt(c)) && r.Issuer.Grants(c) {
			r.adopt(c)
			return c, nil
		}
	}
	c, err := r.Issuer.Issue(now)
	if err != nil {
		return nil, err
	}
	if _, err := r.Verifier.Verify(c.Token, now); err != nil {
		return nil, fmt.Errorf("a freshly issued credential does not verify (check identity.max_credential_ttl and audience): %w", err)
	}
	if err := WriteCredential(r.Dir, c); err != nil {
		return nil, fmt.Errorf("storing the new credential: %w", err)
	}
	if r.OnIssue != nil {
		if err := r.OnIssue(c); err != nil {
			return nil, fmt.Errorf("recording the new credential: %w", err)
		}
	}
	r.adopt(c)
	return c, nil
}

func (r *Rotator) adopt(c *Credential) {
	if r.current != nil && r.current.Claims.ID != c.Claims.ID {
		r.previous = r.current
	}
	r.current = c
}

// Valid reports whether token is the current or the previous credential and
// still verifies: a rotation never cuts off a credential early.
func (r *Rotator) Valid(token string) (*Credential, error) {
	r.mu.Lock()
	cur, prev := r.current, r.previous
	r.mu.Unlock()
	if (cur == nil || token != cur.Token) && (prev == nil || token != prev.Token) {
		return nil, ErrUnknownIssuer
	}
	return r.Verifier.Verify(token, r.now())
}

// Run renews the credential at each rotation point until ctx is done.
// Errors are reported to onError and retried after a short delay; calls
// made meanwhile fail closed in Current.
func (r *Rotator) Run(ctx context.Context, onError func(error)) {
	for {
		c, err := r.Current()
		wait := 5 * time.Second
		if err != nil {
			if onError != nil {
				onError(err)
			}
		} else {
			r.mu.Lock()
			wait = max(r.renewAt(c).Sub(r.now()), time.Second)
			r.mu.Unlock()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
