package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/apikey"
	"github.com/agentmesh/agentmesh/pkg/pgapikey"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys of service callers",
		Long: `An API key lets a service (a CI job, a backend) call 'agentmesh serve --http'
as a named caller without OAuth: the key's caller is key:NAME in audit
entries, policies and trust, and its scopes are mapped like a token's.

A key is shown once, when it is created: the state keeps only its SHA-256.
Creation and revocation are recorded in the audit log with who ran them; a
running serve refuses a revoked key from its next call on.`,
		Example: `  agentmesh keys create --caller ci-bot --scopes mcp:read --expires 90d
  agentmesh keys list
  agentmesh keys revoke ci-bot --reason "INC-7: key printed in a build log"`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return keysListRun(g, time.Now) },
	}
	list := &cobra.Command{
		Use: "list", Short: "List keys: id, caller, scopes, dates and status (never the key)", Args: noArgs,
		Example: "  agentmesh keys list --output json",
		RunE:    func(c *cobra.Command, _ []string) error { return keysListRun(g, time.Now) },
	}
	cmd.AddCommand(newKeysCreateCmd(g), list, newKeysRevokeCmd(g))
	return cmd
}

// keyStore is the API key store of the state directory (apikey.Store) or
// of a fleet's PostgreSQL database (pgapikey.Recorded).
type keyStore interface {
	Create(ctx context.Context, name string, scopes []string, expires time.Time) (string, apikey.Key, error)
	List(ctx context.Context) ([]apikey.Key, error)
	Revoke(ctx context.Context, target, reason string) ([]apikey.Key, error)
}

// openKeys opens the key store with now as its clock; write opens the
// audit log for appending (create, revoke), which needs the identity key.
func (g *globals) openKeys(ctx context.Context, write bool, now func() time.Time) (keyStore, func(), error) {
	cfg, d, err := g.openState()
	if err != nil {
		return nil, nil, err
	}
	if onPostgres(cfg) {
		f, err := openFleet(ctx, cfg, d, write)
		if err != nil {
			return nil, nil, err
		}
		s := &pgapikey.Store{DB: f.db, Now: now, Operator: operator()}
		return pgapikey.Recorded{Store: s, Log: f.log, Agent: f.agent()}, func() { s.Close(); f.close() }, nil
	}
	if write {
		w, err := g.openAuditWriter(ctx)
		if err != nil {
			return nil, nil, err
		}
		s := &apikey.Store{DB: w.db, Log: w.log, Agent: w.id.DID(), Operator: operator(), Now: now}
		return s, func() { s.Close(); w.close() }, nil
	}
	db, err := d.OpenDB(ctx, cfg.Audit.Synchronous)
	if err != nil {
		return nil, nil, err
	}
	s := &apikey.Store{DB: db, Now: now}
	return s, func() { s.Close(); db.Close() }, nil
}

type keysCreateOptions struct {
	Caller  string
	Scopes  string
	Expires string
	Now     func() time.Time
}

// scopes splits --scopes at commas and blanks ("a,b", "a b" as in an
// OAuth scope claim).
func (o keysCreateOptions) scopes() []string {
	return strings.FieldsFunc(o.Scopes, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

func newKeysCreateCmd(g *globals) *cobra.Command {
	opts := keysCreateOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "create --caller NAME [--scopes S,...] [--expires 90d|TIME]",
		Short: "Create a key for a caller and print it once",
		Long: `Create prints the new key on stdout, once: it is not stored (only its hash
is) and cannot be shown again. With --output json, stdout is one JSON object
with the key and its description. The creation is recorded in the audit log
with the key's id, never the key.

NAME is 1-64 letters, digits and . _ - @. A caller may hold several keys
(create the new one, deploy it, revoke the old one by its id).`,
		Example: `  agentmesh keys create --caller ci-bot
  agentmesh keys create --caller reports@analytics --scopes mcp:read --expires 90d
  agentmesh keys create --caller backend --expires 2027-01-31T00:00:00Z --output json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Caller == "" {
				return usageError(c, "keys create: --caller is required: the name the key's calls are made as, e.g. --caller ci-bot")
			}
			if err := apikey.ValidateCallerName(opts.Caller); err != nil {
				return usageError(c, "keys create: --caller: %v", err)
			}
			for _, s := range opts.scopes() {
				if err := apikey.ValidateScope(s); err != nil {
					return usageError(c, "keys create: --scopes: %v", err)
				}
			}
			if _, err := apikey.ParseExpires(opts.Expires, opts.Now()); err != nil {
				return usageError(c, "keys create: --expires: %v", err)
			}
			return keysCreateRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Caller, "caller", "", "the caller's name (required): calls with the key are made as key:NAME")
	f.StringVar(&opts.Scopes, "scopes", "", "token scopes the key carries, comma-separated (mapped by auth.scope_map)")
	f.StringVar(&opts.Expires, "expires", "", "when the key stops working: days (90d), a duration (36h) or an RFC 3339 time (default: never)")
	return cmd
}

// createdKey is `keys create --output json`: the only time the key is shown.
type createdKey struct {
	Plaintext string `json:"key"`
	apikey.Key
}

func keysCreateRun(g *globals, opts keysCreateOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	now := opts.Now()
	store, done, err := g.openKeys(ctx, true, func() time.Time { return now })
	if err != nil {
		return err
	}
	defer done()
	expires, err := apikey.ParseExpires(opts.Expires, now)
	if err != nil {
		return err
	}
	key, k, err := store.Create(ctx, opts.Caller, opts.scopes(), expires)
	if err != nil {
		return err
	}
	g.io.Success("created API key %s for caller %s (scopes: %s; expires: %s)", k.ID, k.Caller, scopeList(k.Scopes), orNever(k.Expires))
	fmt.Fprintln(g.io.Err, "agentmesh: warning: the key is printed once and cannot be shown again: store it in a secret manager now")
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, createdKey{Plaintext: key, Key: k})
	}
	fmt.Fprintln(g.io.Out, key)
	return nil
}

func keysListRun(g *globals, now func() time.Time) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, done, err := g.openKeys(ctx, false, now)
	if err != nil {
		return err
	}
	defer done()
	keys, err := store.List(ctx)
	if err != nil {
		return err
	}
	if format == ui.JSON {
		if keys == nil {
			keys = []apikey.Key{}
		}
		return ui.WriteJSON(g.io.Out, keys)
	}
	if len(keys) == 0 {
		fmt.Fprintln(g.io.Out, "No API keys yet: `agentmesh keys create --caller NAME` makes one.")
		return nil
	}
	rows := make([][]string, len(keys))
	for i, k := range keys {
		status := string(k.Status)
		if k.Status == apikey.Revoked {
			status += " " + k.RevokedAt.Format(time.RFC3339)
		}
		rows[i] = []string{k.ID, k.Caller, scopeList(k.Scopes), k.Created.Format(time.RFC3339), orNever(k.Expires), orNever(k.LastUsed), status}
	}
	g.io.Rows(format, []string{"id", "caller", "scopes", "created", "expires", "last used", "status"}, rows)
	return nil
}

func scopeList(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func orNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

type keysRevokeOptions struct {
	Reason string
}

func newKeysRevokeCmd(g *globals) *cobra.Command {
	var opts keysRevokeOptions
	cmd := &cobra.Command{
		Use:   "revoke ID|CALLER --reason TEXT",
		Short: "Revoke a key, or every key of a caller (audited)",
		Long: `Revoke refuses a key from now on: a running serve refuses it on its next call,
without a restart. ID is a key's id (keys list); CALLER (or key:CALLER)
revokes every key of that caller. The reason and who revoked are recorded
in the audit log, one entry per key.`,
		Example: `  agentmesh keys revoke 3u47dlnc --reason "replaced by a key with narrower scopes"
  agentmesh keys revoke ci-bot --reason "INC-7: key printed in a build log"`,
		Args: exactArgs(1, "ID or CALLER, the key's id or the caller's name (agentmesh keys list)", `agentmesh keys revoke ci-bot --reason "INC-7"`),
		RunE: func(c *cobra.Command, args []string) error {
			if strings.TrimSpace(opts.Reason) == "" {
				return usageError(c, "keys revoke: --reason is required: say why the key may no longer be used (it is recorded in the audit log)")
			}
			return keysRevokeRun(g, args[0], opts)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why the key is revoked (required; recorded in the audit log)")
	return cmd
}

// revokedKeys is `keys revoke --output json`.
type revokedKeys struct {
	Revoked        []apikey.Key `json:"revoked"`
	AlreadyRevoked []apikey.Key `json:"already_revoked,omitempty"`
	By             string       `json:"by,omitempty"`
}

func keysRevokeRun(g *globals, target string, opts keysRevokeOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, done, err := g.openKeys(ctx, true, nil)
	if err != nil {
		return err
	}
	defer done()
	by := operator()
	out := revokedKeys{Revoked: []apikey.Key{}}
	keys, err := store.Revoke(ctx, target, opts.Reason)
	var already *apikey.AlreadyRevokedError
	switch {
	case errors.As(err, &already):
		// Nothing to do is not a failure: scripts may revoke twice.
		fmt.Fprintf(g.io.Err, "agentmesh: nothing to do: %v\n", already)
		out.AlreadyRevoked = already.Keys
	case err != nil:
		return fmt.Errorf("keys revoke: %w", err)
	default:
		out.Revoked, out.By = keys, by
		for _, k := range keys {
			g.io.Success("revoked API key %s of caller %s (by %s): %s", k.ID, k.Caller, by, opts.Reason)
		}
	}
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, out)
	}
	return nil
}
