package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

func newIdentityCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Create, show and rotate the server's cryptographic identity",
		Long: `The server's identity is an Ed25519 key bound to the DID did:agentmesh:NAME
(alsoKnownAs did:key:z6Mk...), with a sponsor: the person accountable for it.
A separate authority key issues short-lived credentials carrying the
capability scopes of agentmesh.yaml.`,
	}
	cmd.AddCommand(newIdentityCreateCmd(g), newIdentityShowCmd(g), newIdentityRotateCmd(g), newIdentitySetSponsorCmd(g))
	return cmd
}

type identityCreateOptions struct {
	Name    string
	Sponsor string
	Force   bool
	Now     func() time.Time
}

func newIdentityCreateCmd(g *globals) *cobra.Command {
	opts := identityCreateOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a new identity (refuses to overwrite one without --force)",
		Example: `  agentmesh identity create --name mcp-tool-server --sponsor devops@company.com
  agentmesh identity create --name mcp-tool-server --sponsor devops@company.com --force`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return identityCreateRun(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "agent name: the DID becomes did:agentmesh:NAME (default: agent.name from the configuration)")
	cmd.Flags().StringVar(&opts.Sponsor, "sponsor", "", "e-mail address of the accountable person (default: agent.sponsor from the configuration)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing identity: its keys move to keys/retired/ and its audit log to retired/ (the paths are printed); to change only the sponsor use set-sponsor")
	return cmd
}

func identityCreateRun(g *globals, opts identityCreateOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if opts.Name == "" {
		opts.Name = cfg.Agent.Name
	}
	if opts.Sponsor == "" {
		if cfg.Agent.Sponsor == config.PlaceholderSponsor {
			return fmt.Errorf("identity create: --sponsor is required (the e-mail address of the person accountable for this server)")
		}
		opts.Sponsor = cfg.Agent.Sponsor
	}
	id, err := g.createIdentity(cfg, opts)
	if err != nil {
		return err
	}
	g.io.Success("created identity %s", id.DID())
	g.io.Hint("key      %s", id.Doc.Current().Fingerprint)
	g.io.Hint("sponsor  %s", id.Doc.Sponsor)
	g.io.Hint("state    %s", cfg.Source.StateDir)
	return nil
}

// listDir names the entries of dir (none if it does not exist).
func listDir(dir string) map[string]bool {
	names := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

// newFiles returns the paths of dir's entries that are not in before,
// sorted, leaving out SQLite's -wal and -shm companions.
func newFiles(dir string, before map[string]bool) []string {
	var out []string
	for name := range listDir(dir) {
		if before[name] || strings.HasSuffix(name, "-wal") || strings.HasSuffix(name, "-shm") {
			continue
		}
		out = append(out, filepath.Join(dir, name))
	}
	sort.Strings(out)
	return out
}

// createIdentity makes the state directory, the identity and its first
// credential. With --force it says where the previous identity's audit log
// and keys went.
func (g *globals) createIdentity(cfg *config.Config, opts identityCreateOptions) (*identity.Identity, error) {
	d, err := state.Create(cfg.Source.StateDir)
	if err != nil {
		return nil, err
	}
	now := opts.Now()
	retiredDB, retiredKeys := d.Join(state.RetiredDir), d.Join(state.RetiredKeysDir)
	dbBefore, keysBefore := listDir(retiredDB), listDir(retiredKeys)
	if opts.Force {
		// A new identity starts a new audit log: the old one (signed by
		// the old keys) is kept beside the retired keys.
		if err := state.RetireDatabase(d, now); err != nil {
			return nil, err
		}
	}
	id, err := identity.Create(d, identity.CreateOptions{Name: opts.Name, Sponsor: opts.Sponsor, Force: opts.Force, Now: now})
	var oldLog, oldKeys []string
	if opts.Force {
		oldLog, oldKeys = newFiles(retiredDB, dbBefore), newFiles(retiredKeys, keysBefore)
	}
	if err != nil {
		if len(oldLog) > 0 {
			err = fmt.Errorf("%w (the previous audit log was moved to %s)", err, strings.Join(oldLog, ", "))
		}
		return nil, fmt.Errorf("identity create: %w", err)
	}
	for _, p := range oldLog {
		g.io.Success("moved the previous audit log to %s", p)
	}
	if len(oldKeys) > 0 {
		names := make([]string, len(oldKeys))
		for i, p := range oldKeys {
			names[i] = filepath.Base(p)
		}
		g.io.Success("moved the previous keys to %s%c (%s)", retiredKeys, filepath.Separator, strings.Join(names, ", "))
	}
	cred, err := mcpserver.Issuer(cfg, id).Issue(now)
	if err != nil {
		return nil, fmt.Errorf("issuing the first credential: %w", err)
	}
	if err := identity.WriteCredential(d, cred); err != nil {
		return nil, fmt.Errorf("storing the first credential: %w", err)
	}
	cur := id.Doc.Current()
	created := audit.Entry{Action: audit.ActionIdentityCreated, Timestamp: now, Details: details(map[string]any{
		"did": id.DID(), "did_key": cur.DIDKey, "fingerprint": cur.Fingerprint, "sponsor": id.Doc.Sponsor, "authority": id.Doc.Authority,
	})}
	issued := credentialIssuedEntry(cred)
	issued.Timestamp = now
	if err := g.recordLifecycle(context.Background(), cfg, d, id, created, issued); err != nil {
		return nil, err
	}
	return id, nil
}

// identityView is `identity show --output json`.
type identityView struct {
	DID         string               `json:"did"`
	AlsoKnownAs []string             `json:"alsoKnownAs"`
	Fingerprint string               `json:"fingerprint"`
	Sponsor     string               `json:"sponsor"`
	Created     string               `json:"created"`
	Authority   string               `json:"authority"`
	StateDir    string               `json:"state_dir"`
	Keys        []identity.KeyRecord `json:"keys"`
	// VerifierKeys are the audit log's signed-note verifier keys, current
	// first: all an auditor needs to check checkpoints and proofs.
	VerifierKeys []string        `json:"verifier_keys"`
	Credential   *credentialView `json:"credential"`
}

type credentialView struct {
	ID       string      `json:"id"`
	Issued   string      `json:"issued"`
	Expires  string      `json:"expires"`
	Audience string      `json:"audience"`
	Valid    bool        `json:"valid"`
	Problem  string      `json:"problem,omitempty"`
	Scopes   []scopeView `json:"scopes"`
}

type scopeView struct {
	Resources []string `json:"resources"`
	Actions   []string `json:"actions"`
	Expires   string   `json:"expires"`
}

type identityShowOptions struct {
	Now func() time.Time
}

func newIdentityShowCmd(g *globals) *cobra.Command {
	opts := identityShowOptions{Now: time.Now}
	return &cobra.Command{
		Use:     "show",
		Short:   "Show the DID, key fingerprint, sponsor, current credential and scopes",
		Example: "  agentmesh identity show\n  agentmesh identity show --output json | jq .credential.expires",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return identityShowRun(g, opts)
		},
	}
}

func identityShowRun(g *globals, opts identityShowOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	cfg, d, err := g.openState()
	if err != nil {
		return err
	}
	// Load checks the private keys too: a key readable by others is
	// reported here, not first when `serve` needs it.
	id, err := identity.Load(d)
	if err != nil {
		return err
	}
	doc := &id.Doc
	view := identityView{
		DID: doc.ID, AlsoKnownAs: doc.AlsoKnownAs, Fingerprint: doc.Current().Fingerprint, Sponsor: doc.Sponsor,
		Created: doc.Created, Authority: doc.Authority, StateDir: d.Path, Keys: doc.Keys,
	}
	view.Credential = describeCredential(cfg, d, doc, opts.Now())
	if view.VerifierKeys, err = auditlog.VerifierKeys(doc); err != nil {
		return err
	}
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, view)
	}
	fields := []ui.Field{
		{Label: "DID", Value: view.DID},
		{Label: "also known as", Value: strings.Join(view.AlsoKnownAs, ", ")},
		{Label: "key", Value: view.Fingerprint},
		{Label: "sponsor", Value: view.Sponsor, Attention: view.Sponsor == config.PlaceholderSponsor},
		{Label: "created", Value: view.Created},
		{Label: "key history", Value: fmt.Sprintf("%d key(s)", len(view.Keys))},
		{Label: "authority", Value: view.Authority},
		{Label: "state", Value: view.StateDir},
		{Label: "verifier key", Value: view.VerifierKeys[0]},
	}
	for _, k := range view.VerifierKeys[1:] {
		fields = append(fields, ui.Field{Label: "older key", Value: k})
	}
	cv := view.Credential
	if cv.Problem != "" {
		fields = append(fields, ui.Field{Label: "credential", Value: cv.Problem, Attention: true})
	} else {
		fields = append(fields, ui.Field{Label: "credential", Value: fmt.Sprintf("%s, expires %s", cv.ID[:12], cv.Expires)})
	}
	for _, s := range cv.Scopes {
		fields = append(fields, ui.Field{Label: "scope", Value: fmt.Sprintf("%s [%s] until %s", strings.Join(s.Resources, " "), strings.Join(s.Actions, ","), s.Expires)})
	}
	g.io.Record("Identity", fields)
	return nil
}

func describeCredential(cfg *config.Config, d *state.Dir, doc *identity.Document, now time.Time) *credentialView {
	cv := &credentialView{Scopes: []scopeView{}}
	tok, err := identity.ReadCredential(d)
	if err != nil {
		cv.Problem = err.Error()
		return cv
	}
	v, err := mcpserver.Verifier(cfg, doc)
	if err != nil {
		cv.Problem = err.Error()
		return cv
	}
	cred, err := v.Verify(tok, now)
	if err != nil {
		cv.Problem = err.Error()
		if errors.Is(err, identity.ErrExpired) {
			cv.Problem += " (a running `agentmesh serve` renews it)"
		}
		return cv
	}
	cv.Valid = true
	cv.ID = cred.Claims.ID
	cv.Issued = cred.Claims.IssuedAtTime().Format(time.RFC3339)
	cv.Expires = cred.Claims.ExpiresAt().Format(time.RFC3339)
	cv.Audience = cred.Claims.Audience
	for _, g := range cred.Claims.Scopes {
		cv.Scopes = append(cv.Scopes, scopeView{Resources: g.Resources, Actions: g.Actions, Expires: time.Unix(g.Expires, 0).UTC().Format(time.RFC3339)})
	}
	return cv
}

type identityRotateOptions struct {
	Now func() time.Time
}

func newIdentityRotateCmd(g *globals) *cobra.Command {
	opts := identityRotateOptions{Now: time.Now}
	return &cobra.Command{
		Use:   "rotate",
		Short: "Replace the identity key; the old key signs the hand-over",
		Long: `Rotate generates a new identity key. The old key signs a hand-over statement
naming the new one, the old private key moves to keys/retired, and the
identity document keeps the old public key so everything it signed (audit
checkpoints) stays verifiable.`,
		Example: "  agentmesh identity rotate",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, d, err := g.openState()
			if err != nil {
				return err
			}
			now := opts.Now()
			id, rot, err := identity.Rotate(d, now)
			if err != nil {
				return fmt.Errorf("identity rotate: %w", err)
			}
			// Signed with the new key; the hand-over in identity.json
			// links it to the old one.
			rotated := audit.Entry{Action: audit.ActionKeyRotated, Timestamp: now, Details: details(map[string]any{
				"old_key": rot.Old.DIDKey, "old_fingerprint": rot.Old.Fingerprint,
				"new_key": rot.New.DIDKey, "new_fingerprint": rot.New.Fingerprint, "handover": rot.New.Handover,
			})}
			if err := g.recordLifecycle(context.Background(), cfg, d, id, rotated); err != nil {
				return err
			}
			g.io.Success("rotated the key of %s", id.DID())
			g.io.Hint("old  %s (retired)", rot.Old.Fingerprint)
			g.io.Hint("new  %s", rot.New.Fingerprint)
			return nil
		},
	}
}

// actionSponsorChanged records `identity set-sponsor` in the audit log.
const actionSponsorChanged audit.Action = "sponsor_changed"

type identitySetSponsorOptions struct {
	Now func() time.Time
}

func newIdentitySetSponsorCmd(g *globals) *cobra.Command {
	opts := identitySetSponsorOptions{Now: time.Now}
	return &cobra.Command{
		Use:   "set-sponsor EMAIL",
		Short: "Change the sponsor (the accountable person); keys and audit log stay",
		Long: `Set-sponsor names a new sponsor in identity.json: the e-mail address of the
person accountable for this server. The DID, the keys and the audit log stay
as they are (identity create --force would start a new identity and a new
audit log). The change is recorded in the audit log as sponsor_changed, with
the old and the new sponsor and who made it, and a new credential naming the
new sponsor is issued. Restart a running 'agentmesh serve' to use it.`,
		Example: `  agentmesh identity set-sponsor devops@company.com
  agentmesh --config /etc/agentmesh/agentmesh.yaml identity set-sponsor security@company.com`,
		Args: exactArgs(1, "EMAIL, the new sponsor's e-mail address", "agentmesh identity set-sponsor devops@company.com"),
		RunE: func(c *cobra.Command, args []string) error {
			return identitySetSponsorRun(g, opts, args[0])
		},
	}
}

func identitySetSponsorRun(g *globals, opts identitySetSponsorOptions, sponsor string) error {
	if sponsor == config.PlaceholderSponsor {
		return fmt.Errorf("identity set-sponsor: %s is the placeholder agentmesh uses when no sponsor is set: give the e-mail address of the person accountable for this server", sponsor)
	}
	cfg, d, err := g.openState()
	if err != nil {
		return err
	}
	id, previous, err := identity.SetSponsor(d, sponsor)
	if err != nil {
		return fmt.Errorf("identity set-sponsor: %w", err)
	}
	if previous == sponsor {
		g.io.Success("the sponsor of %s is already %s; nothing changed", id.DID(), sponsor)
		return nil
	}
	now := opts.Now()
	changed := audit.Entry{Action: actionSponsorChanged, Timestamp: now, Details: details(map[string]any{
		"from": previous, "to": sponsor, "by": operator(),
	})}
	entries := []audit.Entry{changed}
	// Credentials name the sponsor too: issue one that names the new one.
	cred, err := mcpserver.Issuer(cfg, id).Issue(now)
	if err == nil {
		err = identity.WriteCredential(d, cred)
	}
	if err != nil {
		fmt.Fprintf(g.io.Err, "agentmesh: warning: issuing a credential for the new sponsor: %v (agentmesh serve issues one when it starts)\n", err)
	} else {
		issued := credentialIssuedEntry(cred)
		issued.Timestamp = now
		entries = append(entries, issued)
	}
	if err := g.recordLifecycle(context.Background(), cfg, d, id, entries...); err != nil {
		return fmt.Errorf("identity set-sponsor: the sponsor in %s is now %s, but %w", d.Join(state.IdentityDoc), sponsor, err)
	}
	g.io.Success("the sponsor of %s is now %s (was %s)", id.DID(), sponsor, previous)
	g.io.Hint("recorded in the audit log as %s; the keys and the audit log are unchanged", actionSponsorChanged)
	if cfg.Source.File != "" && cfg.Agent.Sponsor != sponsor {
		g.io.Hint("agent.sponsor in %s still says %s: update it too (it is used when an identity is created)", cfg.Source.File, cfg.Agent.Sponsor)
	}
	g.io.Hint("restart a running `agentmesh serve` to use the new sponsor")
	return nil
}
