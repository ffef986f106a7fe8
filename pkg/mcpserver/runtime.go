// Package mcpserver assembles the governed agentmesh MCP server from the
// configuration: identity and credentials, policy, redaction, audit log,
// trust, the built-in tools, and the mcp-go server whose every tool call
// passes through pkg/governance. `agentmesh serve` and `agentmesh demo` run
// it; it owns nothing the packages it wires do not.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/proxy"
	"github.com/agentmesh/agentmesh/pkg/redact"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/tools"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Options are what the command line adds to the configuration.
type Options struct {
	// Stderr receives the console view and warnings.
	Stderr io.Writer
	// Quiet turns the per-call console lines off; LogJSON makes them JSON.
	Quiet, LogJSON bool
	// Version is reported to clients in initialize.
	Version string
	// SandboxExe and SandboxArgs start the code_execute child process
	// (agentmesh re-executing itself through a hidden subcommand).
	SandboxExe  string
	SandboxArgs []string
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// Metrics turns Prometheus metrics on (serve --metrics); they are on
	// too when http.metrics_addr is set. ServeMetrics serves them.
	Metrics bool
}

// Runtime is a running server's parts.
type Runtime struct {
	Cfg *config.Config
	Dir *state.Dir
	ID  *identity.Identity
	DB  *state.DB
	// DB, Log and Trust are the state directory's SQLite database, its
	// audit log and its trust store; nil with a PostgreSQL state database
	// (state.database), where store holds them.
	Log      *auditlog.Log
	Trust    *trust.Store
	Rotator  *identity.Rotator
	Policy   *policy.Engine
	Pipeline *governance.Pipeline
	MCP      *server.MCPServer
	Tools    []tools.Tool
	// Proxy governs the upstream MCP servers; nil without upstreams.
	Proxy *proxy.Proxy
	// Metrics are the server's Prometheus metrics; nil when off.
	Metrics *metrics.Metrics

	store   backend
	opts    Options
	closers []func() error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	warnMu  sync.Mutex
	closeMu sync.Once
	policy  *policyWatch
	// approver asks users (elicitation); its server is set by buildServer.
	approver *elicitApprover
	// tracer traces calls; nil when no OTLP endpoint is configured.
	tracer trace.Tracer
	// secrets are the configuration's resolved secret references
	// (secrets.go); Cfg holds their values in place of the references.
	secrets []config.Secret
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Open builds the server. It creates the state directory and an identity on
// first start (zero-config), opens the audit log, loads the policies, and
// starts credential rotation and policy watching in the background.
func Open(ctx context.Context, cfg *config.Config, opts Options) (*Runtime, error) {
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	resolved, secrets, err := resolveSecrets(cfg)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{Cfg: resolved, opts: opts, approver: &elicitApprover{}, secrets: secrets}
	if err := rt.open(ctx); err != nil {
		rt.Close()
		return nil, err
	}
	return rt, nil
}

func (rt *Runtime) warnf(format string, args ...any) {
	rt.warnMu.Lock()
	defer rt.warnMu.Unlock()
	fmt.Fprintf(rt.opts.Stderr, "agentmesh: warning: "+format+"\n", args...)
}

func (rt *Runtime) open(ctx context.Context) error {
	cfg := rt.Cfg
	d, err := state.Create(cfg.Source.StateDir)
	if err != nil {
		return err
	}
	rt.Dir = d
	rt.openMetrics()
	created, err := rt.ensureIdentity()
	if err != nil {
		return err
	}
	if cfg.Source.Database != "" {
		pg, err := rt.openPostgres(ctx)
		if err != nil {
			return err // rt.store stays nil: not a nil *pgBackend that Close would call
		}
		rt.store = pg
	} else if err := rt.openSQLite(ctx); err != nil {
		return err
	}
	if err := rt.openTracer(ctx); err != nil {
		return err
	}
	if created {
		cur := rt.ID.Doc.Current()
		if _, err := rt.store.append(ctx, audit.Entry{Agent: rt.ID.DID(), Action: audit.ActionIdentityCreated,
			Details: jsonDetails(map[string]any{"did": rt.ID.DID(), "did_key": cur.DIDKey, "fingerprint": cur.Fingerprint, "sponsor": rt.ID.Doc.Sponsor, "by": "serve (first start)"})}); err != nil {
			return err
		}
	}
	if err := rt.openCredentials(); err != nil {
		return err
	}
	redactOpts := cfg.RedactOptions()
	redactOpts.Secrets = config.SecretValues(rt.secrets)
	redactor := redact.New(redactOpts)
	rt.warnSecrets()
	if err := rt.openPolicy(ctx, redactor); err != nil {
		return err
	}
	if err := rt.buildTools(); err != nil {
		return err
	}
	var console governance.Console
	if !rt.opts.Quiet {
		console = &governance.TextConsole{W: rt.opts.Stderr, JSON: rt.opts.LogJSON}
	}
	var red *redact.Redactor
	if cfg.Redaction.Enabled {
		red = redactor
	}
	grants, err := callerScopes(cfg.Auth)
	if err != nil {
		return fmt.Errorf("auth.scope_map: %w", err)
	}
	rt.Pipeline = governance.New(governance.Options{
		Agent: rt.ID.DID(), Credentials: rt.Rotator, Policy: rt.Policy,
		Redactor: red, RedactOutputs: cfg.Redaction.Enabled && cfg.Redaction.Outputs, RedactParams: cfg.Redaction.Enabled && cfg.Redaction.Params,
		Ledger: rt.store.ledger(), BatchedAudit: cfg.Audit.BatchWindow > 0, TrustModel: trust.FromConfig(cfg.Trust), KeepWhenRevoked: cfg.Trust.KeepWhenRevoked, Shadow: cfg.Governance.ShadowMode,
		MaxOutputBytes: int(cfg.Governance.MaxOutputBytes), MaxParamBytes: cfg.Audit.MaxParamBytes, Console: console, Now: rt.opts.Now,
		Approver: rt.approver, CallerScopes: grants, Metrics: rt.Metrics, Tracer: rt.tracer,
	})
	if len(cfg.Upstreams) > 0 {
		reserved := make([]string, 0, len(rt.Tools))
		for _, t := range rt.Tools {
			reserved = append(reserved, t.Definition().Name)
		}
		ups := make([]config.Upstream, len(cfg.Upstreams))
		for i, u := range cfg.Upstreams {
			if u.Cwd != "" {
				u.Cwd = cfg.ResolvePath(u.Cwd) // relative to the configuration file
			}
			ups[i] = u
		}
		rt.Proxy = proxy.New(proxy.Options{
			Upstreams: ups, Pipeline: rt.Pipeline, Reserved: reserved, Version: rt.version(), Stderr: knownSecretsWriter{rt.opts.Stderr, redactor}, Warnf: rt.warnf,
			Pins: rt.store.pins(rt.ID.DID()), Agent: rt.ID.DID(),
			Record: func(ctx context.Context, e audit.Entry) error {
				_, err := rt.store.append(ctx, e)
				return err
			},
			Redactor: red, Metrics: rt.Metrics,
		})
	}
	rt.buildServer()
	if rt.Proxy != nil {
		rt.Proxy.Start(rt.MCP)
	}

	bg, cancel := context.WithCancel(context.Background())
	rt.cancel = cancel
	rt.wg.Add(2)
	go func() {
		defer rt.wg.Done()
		rt.Rotator.Run(bg, func(err error) { rt.warnf("credential renewal failed (calls are refused until it succeeds): %v", err) })
	}()
	go func() {
		defer rt.wg.Done()
		rt.policy.watch(bg)
	}()
	return nil
}

// openSQLite opens the state directory's database and audit log.
func (rt *Runtime) openSQLite(ctx context.Context) error {
	cfg := rt.Cfg
	var err error
	if rt.DB, err = rt.Dir.OpenDB(ctx, cfg.Audit.Synchronous); err != nil {
		return err
	}
	rt.store = sqliteBackend{rt}
	logOpts := auditlog.Options{Now: rt.opts.Now, Metrics: rt.Metrics, OnWitnessError: func(err error) { rt.warnf("%v", err) }, BatchWindow: cfg.Audit.BatchWindow.D(),
		OnEnqueuedError: func(err error) {
			rt.warnf("a batched audit commit failed, its entries are lost, and every call is refused from now on (audit.batch_window): %v", err)
		}}
	if cfg.Audit.Witness && cfg.Source.UserConfigDir != "" {
		logOpts.WitnessDir = auditlog.WitnessDir(cfg.Source.UserConfigDir)
	}
	for _, w := range cfg.Audit.Witnesses {
		logOpts.Witnesses = append(logOpts.Witnesses, auditlog.ExternalWitness{URL: w.URL, Key: w.Key})
	}
	if rt.Log, err = auditlog.Open(ctx, rt.DB, rt.ID, logOpts); err != nil {
		return err
	}
	rt.watchLog()
	rt.Trust = &trust.Store{DB: rt.DB, Model: trust.FromConfig(cfg.Trust), Now: rt.opts.Now, Cache: trust.NewCache(), Metrics: rt.Metrics}
	return nil
}

// ensureIdentity loads the identity, creating one on first start. Several
// processes may start at once (Claude Desktop may launch more than one
// serve): the identity key is created with O_EXCL, and the losers load the
// winner's identity.
func (rt *Runtime) ensureIdentity() (created bool, err error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		rt.ID, err = identity.Load(rt.Dir)
		if err == nil {
			return created, nil
		}
		if !errors.Is(err, identity.ErrNoIdentity) && !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return false, err
		}
		if _, statErr := os.Stat(rt.Dir.Join(state.IdentityKey)); statErr != nil {
			rt.ID, err = identity.Create(rt.Dir, identity.CreateOptions{Name: rt.Cfg.Agent.Name, Sponsor: rt.Cfg.Agent.Sponsor, Now: rt.opts.now()})
			if err == nil {
				if rt.Cfg.Agent.Sponsor == config.PlaceholderSponsor {
					rt.warnf("created identity %s with a placeholder sponsor; run `agentmesh identity set-sponsor EMAIL` (and set agent.sponsor in agentmesh.yaml)", rt.ID.DID())
				}
				return true, nil
			}
			if !errors.Is(err, identity.ErrExists) {
				return false, err
			}
		}
		time.Sleep(50 * time.Millisecond) // another process is writing it
	}
}

func (rt *Runtime) openCredentials() error {
	v, err := Verifier(rt.Cfg, &rt.ID.Doc)
	if err != nil {
		return err
	}
	rt.Rotator = &identity.Rotator{
		Dir: rt.Dir, Issuer: Issuer(rt.Cfg, rt.ID), Verifier: v, RotateAt: rt.Cfg.Identity.RotateAt, Now: rt.opts.Now,
		OnIssue: func(c *identity.Credential) error {
			_, err := rt.store.append(context.Background(), audit.Entry{Agent: rt.ID.DID(), Action: audit.ActionCredentialIssued,
				Details: jsonDetails(map[string]any{"jti": c.Claims.ID, "exp": c.Claims.ExpiresAt().Format(time.RFC3339), "aud": c.Claims.Audience, "scopes": c.Claims.Scopes})})
			return err
		},
	}
	if _, err := rt.Rotator.Current(); err != nil {
		rt.warnf("no valid credential yet (calls are refused until one is issued): %v", err)
	}
	return nil
}

// Close stops background work and closes the log (flushing the witness) and
// the database.
func (rt *Runtime) Close() error {
	rt.closeMu.Do(func() {
		if rt.Proxy != nil {
			rt.Proxy.Close()
		}
		if rt.cancel != nil {
			rt.cancel()
			rt.wg.Wait()
		}
		for _, c := range rt.closers {
			c()
		}
		if rt.store != nil {
			rt.store.close()
		}
	})
	return nil
}

// SampleDataDir is where zero-config sample data lives.
func SampleDataDir(cfg *config.Config) string { return filepath.Join(cfg.Source.StateDir, "data") }
