package governance

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// caller returns who made the call the context carries (nil when the
// transport named no one) and the subject whose trust state and
// rate-limit counters the call charges: the caller's ID for an
// authenticated HTTP caller; the server's DID for the local OS user, for
// anonymous callers of a server without authentication (loopback only)
// and for calls without a caller: a server's one principal (trust.Subject
// is the same rule for audit entries).
func (p *Pipeline) caller(ctx context.Context) (*caller.Caller, string) {
	c := caller.FromContext(ctx)
	if c == nil || !c.Kind.OwnTrust() {
		return c, p.opts.Agent
	}
	return c, c.ID
}

// CallerEnv is c as policy conditions see it (`caller`).
func CallerEnv(c *caller.Caller) policy.CallerEnv {
	if c == nil {
		return policy.CallerEnv{}
	}
	return policy.CallerEnv{ID: c.ID, Kind: string(c.Kind), Iss: c.Issuer, Sub: c.Subject, ClientID: c.ClientID,
		Name: c.Name, Scopes: c.Scopes, Groups: c.Groups, Claims: c.Claims}
}

// resetFlag is the --caller flag `trust reset` needs for subject, if any.
func resetFlag(subject, agent string) string {
	if subject == agent {
		return ""
	}
	return " --caller " + strconv.Quote(subject)
}

func setString(set scope.Set) string {
	if len(set) == 0 {
		return "nothing"
	}
	var parts []string
	for _, s := range set {
		g := s.Grant()
		parts = append(parts, strings.Join(g.Resources, ",")+" "+strings.Join(g.Actions, ","))
	}
	return strings.Join(parts, "; ")
}

// Visible reports whether the caller in ctx could call c at all, for
// listings (tools/list, prompts/list, resources/list): the MCP 2026-07-28
// revision lets lists vary by authorization, and a team gateway shows
// each caller only what it may call. A tool is hidden from an
// authenticated caller when its token's scopes map to no capability scope
// of the tool's kind and action (auth.scope_map), or when a policy rule
// blocks every call of it by this caller whatever the arguments
// (policy.Engine.Hides). The local user and anonymous loopback callers see
// every tool, as before callers existed. Visibility is a courtesy: every
// call is decided again, and refused calls are audited.
func (p *Pipeline) Visible(ctx context.Context, c Call) bool {
	who, subject := p.caller(ctx)
	if who == nil || !who.Kind.OwnTrust() {
		return true
	}
	if p.opts.CallerScopes != nil && (c.kind != nil || c.Access != nil) {
		if set, ok := p.opts.CallerScopes(who); ok {
			var acc tools.Access
			exact := false
			if c.kind != nil {
				acc = *c.kind
			} else {
				var err error
				acc, err = c.Access(map[string]any{})
				exact = err == nil
			}
			if acc.Kind != "" && !acc.Public && !grantsAny(set, p.opts.Now(), acc, exact) {
				return false
			}
		}
	}
	pc := &policy.Call{Tool: c.Tool, Agent: p.opts.Agent, Client: c.Client, Upstream: c.Upstream, UpstreamTool: c.UpstreamTool,
		Method: c.Method, URI: c.URI, Caller: CallerEnv(who), Subject: subject}
	return !p.opts.Policy.Hides(ctx, pc)
}

// grantsAny reports whether set could allow a call with access acc: the
// exact target when it is known without arguments (an upstream tool),
// else any resource of the kind with the action.
func grantsAny(set scope.Set, now time.Time, acc tools.Access, exact bool) bool {
	if exact && acc.Target != "" {
		return set.Allows(now, acc.Kind, acc.Target, acc.Action)
	}
	for _, s := range set {
		if s.Expires.IsZero() || !now.Before(s.Expires) || !slices.Contains(s.Actions, acc.Action) {
			continue
		}
		for _, r := range s.Resources {
			if r.Kind == acc.Kind {
				return true
			}
		}
	}
	return false
}
