package mcpserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgtrust"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/redact"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/tools"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Explainer decides calls as `serve` would (the same pipeline, the same
// tools with their guards, the same scopes, the stored trust state), without
// running a tool or writing to the audit log: `agentmesh policy explain`.
type Explainer struct {
	Pipeline *governance.Pipeline
	Agent    string
	Score    int
	resolve  governance.Resolver
	cfg      *config.Config
	closers  []func() error
}

// ExplainOptions adjust what the explainer assumes.
type ExplainOptions struct {
	// Policy is the engine to decide with (a scratch rate-limit counter,
	// so that explaining consumes nothing).
	Policy *policy.Engine
	// TrustScore, when >= 0, replaces the stored trust score.
	TrustScore int
	Now        func() time.Time
}

// credential holds a credential issued in memory, with the configured
// scopes: what a serving process holds.
type credential struct{ c *identity.Credential }

func (c credential) Current() (*identity.Credential, error) { return c.c, nil }

// OpenExplainer builds the decision path of cfg. It reads the state
// directory's trust state when there is one (the score a call would meet);
// the credential is issued in memory from the configured scopes.
func OpenExplainer(ctx context.Context, cfg *config.Config, o ExplainOptions) (*Explainer, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	x := &Explainer{cfg: cfg, Agent: "did:agentmesh:" + cfg.Agent.Name}
	if d, err := state.Open(cfg.Source.StateDir); err == nil {
		if doc, err := identity.LoadDocument(d); err == nil {
			x.Agent = doc.ID
		}
	}
	var imposed *trust.State
	switch {
	case o.TrustScore >= 0:
		m := trust.FromConfig(cfg.Trust)
		st := m.Fresh()
		st.Score, st.Revoked = o.TrustScore, o.TrustScore < m.RevokeBelow
		imposed = &st
	case cfg.Source.Database != "":
		// A fleet's trust state is in its database: explain against it.
		st, err := fleetTrustState(ctx, cfg, x.Agent, o.Now)
		if err != nil {
			return nil, err
		}
		imposed = &st
	}
	db, err := x.trustDB(ctx, imposed)
	if err != nil {
		return nil, err
	}
	x.closers = append(x.closers, db.Close)
	store := &trust.Store{DB: db, Model: trust.FromConfig(cfg.Trust), Now: o.Now}
	st, err := store.Get(ctx, x.Agent)
	if err != nil {
		x.Close()
		return nil, err
	}
	x.Score = st.Score
	if o.TrustScore >= 0 {
		x.Score = o.TrustScore
	}
	_, authority, _ := ed25519.GenerateKey(rand.Reader)
	scopes := make([]identity.ScopeTemplate, len(cfg.Scopes))
	for i, s := range cfg.Scopes {
		scopes[i] = identity.ScopeTemplate{Resources: s.Resources, Actions: s.Actions, TTL: time.Duration(s.TTLMinutes) * time.Minute}
	}
	cred, err := (&identity.Issuer{Authority: authority, Subject: x.Agent, TTL: cfg.Identity.CredentialTTL.D(), Scopes: scopes}).Issue(o.Now())
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("the configured scopes: %w", err)
	}
	ts, closers, err := BuildTools(cfg, Options{})
	x.closers = append(x.closers, closers...)
	if err != nil {
		x.Close()
		return nil, err
	}
	x.resolve = governance.BuiltinResolver(ts...)
	var red *redact.Redactor
	if cfg.Redaction.Enabled {
		red = redact.New(cfg.RedactOptions())
	}
	x.Pipeline = governance.New(governance.Options{
		Agent: x.Agent, Credentials: credential{cred}, Policy: o.Policy, Redactor: red,
		RedactOutputs: cfg.Redaction.Enabled && cfg.Redaction.Outputs, RedactParams: cfg.Redaction.Enabled && cfg.Redaction.Params,
		Ledger: trust.Ledger{Store: store}, TrustModel: store.Model, KeepWhenRevoked: cfg.Trust.KeepWhenRevoked, Shadow: cfg.Governance.ShadowMode,
		MaxOutputBytes: int(cfg.Governance.MaxOutputBytes), Now: o.Now,
	})
	return x, nil
}

// fleetTrustState reads agent's trust state from the PostgreSQL state
// database of cfg.
func fleetTrustState(ctx context.Context, cfg *config.Config, agent string, now func() time.Time) (trust.State, error) {
	db, err := pgstate.Open(ctx, cfg.Source.Database)
	if err != nil {
		return trust.State{}, fmt.Errorf("%w (from %s)", err, cfg.Source.DatabaseFrom)
	}
	defer db.Close()
	return (&pgtrust.Store{DB: db, Model: trust.FromConfig(cfg.Trust), Now: now}).Get(ctx, agent)
}

// trustDB is the state database when there is one and no state is
// imposed; otherwise a scratch database holding the imposed state (or
// none: the initial score), so that nothing in the state directory is
// written.
func (x *Explainer) trustDB(ctx context.Context, imposed *trust.State) (*state.DB, error) {
	path := filepath.Join(x.cfg.Source.StateDir, state.DatabaseFile)
	if _, err := os.Stat(path); err == nil && imposed == nil {
		return state.OpenDB(ctx, path, state.SyncNormal)
	}
	dir, err := os.MkdirTemp("", "agentmesh-explain-")
	if err != nil {
		return nil, err
	}
	x.closers = append(x.closers, func() error { return os.RemoveAll(dir) })
	db, err := state.OpenDB(ctx, filepath.Join(dir, state.DatabaseFile), state.SyncNormal)
	if err != nil {
		return nil, err
	}
	if imposed != nil {
		if err := (&trust.Store{DB: db, Model: trust.FromConfig(x.cfg.Trust)}).Put(ctx, x.Agent, *imposed); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Explain decides one call. Upstream and UpstreamTool name a proxied call
// (an upstream in the configuration, or any other name).
func (x *Explainer) Explain(ctx context.Context, c governance.Call, output *string) governance.Explanation {
	if r, ok := x.resolve(c.Tool); ok {
		c.Access = r.Access
	} else if c.Upstream != "" {
		tool := c.UpstreamTool
		if tool == "" {
			tool = c.Tool
		}
		c.Access = func(map[string]any) (tools.Access, error) {
			return tools.Access{Kind: scope.MCP, Target: c.Upstream + "/" + tool, Action: scope.Call, Changes: !x.readOnly(c.Upstream, tool)}, nil
		}
	}
	return x.Pipeline.Explain(ctx, c, output)
}

func (x *Explainer) readOnly(upstream, tool string) bool {
	for _, u := range x.cfg.Upstreams {
		if u.Name != upstream {
			continue
		}
		for _, g := range u.ReadOnlyTools {
			if ok, _ := path.Match(g, tool); ok {
				return true
			}
		}
	}
	return false
}

// Close releases the tools and databases.
func (x *Explainer) Close() error {
	var errs []error
	for i := len(x.closers) - 1; i >= 0; i-- {
		errs = append(errs, x.closers[i]())
	}
	return errors.Join(errs...)
}
