package config

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// Parse decodes an agentmesh.yaml over the embedded defaults and validates
// it. Every problem is reported, each as FILE:LINE:COL (a yamlpos.ErrorList).
func Parse(file string, data []byte) (*Config, error) {
	cfg := Default()
	pos, err := yamlpos.DecodePositions(file, data, &cfg)
	if err != nil {
		return nil, err
	}
	v := validator{file: file, pos: pos}
	v.check(&cfg)
	if err := v.errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks a configuration built in code (the embedded defaults, a
// test's); errors carry no positions.
func (c *Config) Validate() error {
	v := validator{file: "(configuration)", pos: yamlpos.Positions{}}
	v.check(c)
	return v.errs.Err()
}

// ValidateUpstreams checks the upstreams alone, after the command line
// added some (serve --upstream).
func (c *Config) ValidateUpstreams() error {
	v := validator{file: "(upstreams from the command line and configuration)", pos: yamlpos.Positions{}}
	v.checkUpstreams(c.Upstreams)
	return v.errs.Err()
}

type validator struct {
	file string
	pos  yamlpos.Positions
	errs yamlpos.ErrorList
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.pos.Of(v.file, path).Errorf(format, args...))
}

func (v *validator) check(c *Config) {
	if err := identity.ValidName(c.Agent.Name); err != nil {
		v.errorf("agent.name", "%v", err)
	}
	if err := identity.ValidSponsor(c.Agent.Sponsor); err != nil {
		v.errorf("agent.sponsor", "%v", err)
	}
	v.checkIdentity(c.Identity)
	if c.State.Database != "" {
		if err := CheckDatabaseURL(c.State.Database); err != nil {
			v.errorf("state.database", "%v", err)
		} else if c.Audit.BatchWindow > 0 {
			v.errorf("audit.batch_window", "batched durability is not offered with a PostgreSQL state database (group commit already batches concurrent calls); remove audit.batch_window")
		}
	}
	for i, p := range c.Policies.Paths {
		if strings.TrimSpace(p) == "" {
			v.errorf(fmt.Sprintf("policies.paths[%d]", i), "empty policy path")
		}
	}
	if c.Governance.MaxOutputBytes <= 0 {
		v.errorf("governance.max_output_bytes", "must be a positive number of bytes")
	}
	v.checkTrust(c.Trust)
	for i, s := range c.Scopes {
		v.checkScope(fmt.Sprintf("scopes[%d]", i), s, c.Identity.MaxCredentialTTL)
	}
	v.checkFilesystem(c.Tools.Filesystem)
	v.checkDatabase(c.Tools.Database)
	v.checkAPI(c.Tools.API)
	v.checkCode(c.Tools.Code)
	if c.Redaction.Timeout <= 0 {
		v.errorf("redaction.timeout", "must be positive")
	}
	if s := c.Audit.Synchronous; s != "full" && s != "normal" {
		v.errorf("audit.synchronous", "must be \"full\" (fsync every commit) or \"normal\" (faster, may lose the last commits on power loss), got %q", s)
	}
	if w := c.Audit.BatchWindow; w < 0 || w.D() > time.Second {
		v.errorf("audit.batch_window", "must be between 0 (every call waits for its commit) and 1s, got %s", w)
	}
	if c.Audit.MaxParamBytes < 256 {
		v.errorf("audit.max_param_bytes", "must be at least 256")
	}
	for i, w := range c.Audit.Witnesses {
		p := fmt.Sprintf("audit.witnesses[%d]", i)
		if pu, err := url.Parse(w.URL); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			v.errorf(p+".url", "want the witness's http(s) URL (its submission prefix), got %q", w.URL)
		}
		if err := checkWitnessKey(w.Key); err != nil {
			v.errorf(p+".key", "%v", err)
		}
	}
	v.checkUpstreams(c.Upstreams)
	v.checkSecrets(c)
	v.checkHTTP(c.HTTP)
	v.checkAuth(c.Auth)
	v.checkTelemetry(c.Telemetry)
	v.checkCompliance(c)
}

func (v *validator) checkIdentity(id Identity) {
	if id.CredentialTTL <= 0 {
		v.errorf("identity.credential_ttl", "must be positive")
	}
	if id.MaxCredentialTTL < id.CredentialTTL {
		v.errorf("identity.max_credential_ttl", "must be at least credential_ttl (%s)", id.CredentialTTL)
	}
	if id.RotateAt <= 0 || id.RotateAt >= 1 {
		v.errorf("identity.rotate_at", "must be a fraction between 0 and 1 (0.5 renews at half-life), got %v", id.RotateAt)
	}
}

func (v *validator) checkTrust(t Trust) {
	inRange := func(p string, n int) {
		if n < 0 || n > 1000 {
			v.errorf(p, "must be between 0 and 1000, got %d", n)
		}
	}
	inRange("trust.initial", t.Initial)
	inRange("trust.revoke_below", t.RevokeBelow)
	if t.Initial < t.RevokeBelow {
		v.errorf("trust.initial", "the initial score %d is below revoke_below %d: every call would be refused", t.Initial, t.RevokeBelow)
	}
	if len(t.Tiers) == 0 {
		v.errorf("trust.tiers", "at least one tier is needed")
	}
	hasZero := false
	for name, min := range t.Tiers {
		inRange("trust.tiers."+name, min)
		if min == 0 {
			hasZero = true
		}
	}
	if len(t.Tiers) > 0 && !hasZero {
		v.errorf("trust.tiers", "one tier must start at 0 so every score has a tier")
	}
	if t.RecoveryAfter < 0 {
		v.errorf("trust.recovery_after", "must not be negative")
	}
	if t.DailyGainAboveInitial < 0 {
		v.errorf("trust.daily_gain_above_initial", "must not be negative (0: no gain above initial)")
	}
	if t.RepeatWindow < 0 {
		v.errorf("trust.repeat_window", "must not be negative (0: every refusal costs)")
	}
	for name, w := range map[string]int{"allowed": t.Weights.Allowed, "mistake": t.Weights.Mistake, "attack": t.Weights.Attack,
		"rate_limited": t.Weights.RateLimited, "credential_failure": t.Weights.CredentialFailure, "policy.low": t.Weights.Policy.Low,
		"policy.medium": t.Weights.Policy.Medium, "policy.high": t.Weights.Policy.High, "policy.critical": t.Weights.Policy.Critical} {
		if w < 0 || w > 1000 {
			v.errorf("trust.weights."+name, "must be between 0 and 1000 points, got %d", w)
		}
	}
	if t.RecoveryPerHour < 0 {
		v.errorf("trust.recovery_per_hour", "must not be negative")
	}
}

func (v *validator) checkScope(p string, s Scope, maxTTL Duration) {
	if len(s.Resources) == 0 {
		v.errorf(p, "scope lists no resources")
	}
	for i, r := range s.Resources {
		if _, err := scope.ParseResource(r); err != nil {
			v.errorf(fmt.Sprintf("%s.resources[%d]", p, i), "%v", err)
		}
	}
	if len(s.Actions) == 0 {
		v.errorf(p, "scope lists no actions")
	}
	for i, a := range s.Actions {
		if _, err := scope.ParseAction(a); err != nil {
			v.errorf(fmt.Sprintf("%s.actions[%d]", p, i), "%v", err)
		}
	}
	if s.TTLMinutes <= 0 {
		v.errorf(p+".ttl_minutes", "must be a positive number of minutes")
	}
}

func (v *validator) checkFilesystem(fs Filesystem) {
	mounts := map[string]bool{}
	for i, r := range fs.Roots {
		p := fmt.Sprintf("tools.filesystem.roots[%d]", i)
		if r.Path == "" {
			v.errorf(p, "root has no path (the host directory to mount)")
		}
		if !strings.HasPrefix(r.Mount, "/") || path.Clean(r.Mount) != r.Mount || r.Mount == "/" {
			v.errorf(p+".mount", "mount must be a clean absolute virtual path other than / (such as /data), got %q", r.Mount)
		}
		if mounts[r.Mount] {
			v.errorf(p+".mount", "mount %q is used twice", r.Mount)
		}
		mounts[r.Mount] = true
		if r.Access != AccessRead && r.Access != AccessReadWrite {
			hint := ""
			switch strings.ToLower(r.Access) {
			case "read-only", "readonly", "ro", "r":
				hint = fmt.Sprintf(" (read-only is spelled %q)", AccessRead)
			case "readwrite", "rw", "write", "read_write":
				hint = fmt.Sprintf(" (read and write is spelled %q)", AccessReadWrite)
			}
			v.errorf(p+".access", "access must be %q or %q, got %q%s", AccessRead, AccessReadWrite, r.Access, hint)
		}
	}
	for m := range mounts {
		for other := range mounts {
			if m != other && strings.HasPrefix(m, other+"/") {
				v.errorf("tools.filesystem.roots", "mount %q is nested inside mount %q; mounts must not overlap", m, other)
			}
		}
	}
	for i, g := range fs.BlockedGlobs {
		if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), ""); err != nil || !strings.HasPrefix(g, "**/") && !strings.HasPrefix(g, "/") {
			v.errorf(fmt.Sprintf("tools.filesystem.blocked_globs[%d]", i), "glob %q must start with / or **/ and be well formed", g)
		}
	}
	if fs.MaxReadBytes <= 0 {
		v.errorf("tools.filesystem.max_read_bytes", "must be positive")
	}
	if fs.MaxWriteBytes <= 0 {
		v.errorf("tools.filesystem.max_write_bytes", "must be positive")
	}
}

func (v *validator) checkDatabase(db Database) {
	names := map[string]bool{}
	for i, d := range db.Databases {
		p := fmt.Sprintf("tools.database.databases[%d]", i)
		if err := identity.ValidName(d.Name); err != nil {
			v.errorf(p+".name", "database %v", err)
		}
		if names[d.Name] {
			v.errorf(p+".name", "database name %q is used twice", d.Name)
		}
		names[d.Name] = true
		if d.Path == "" {
			v.errorf(p, "database has no path")
		}
	}
	if db.MaxRows <= 0 {
		v.errorf("tools.database.max_rows", "must be positive")
	}
	if db.Timeout <= 0 {
		v.errorf("tools.database.timeout", "must be positive")
	}
}

var httpMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

func (v *validator) checkAPI(api API) {
	for i, e := range api.Endpoints {
		p := fmt.Sprintf("tools.api.endpoints[%d]", i)
		if _, err := scope.ParseResource("api:" + e.URL); err != nil {
			v.errorf(p+".url", "%v", strings.TrimPrefix(err.Error(), "resource "))
		}
		if len(e.Methods) == 0 {
			v.errorf(p, "endpoint lists no methods (such as [GET])")
		}
		for j, m := range e.Methods {
			if !httpMethods[m] {
				v.errorf(fmt.Sprintf("%s.methods[%d]", p, j), "unknown HTTP method %q (write it in upper case: GET, POST, ...)", m)
			}
		}
	}
	if api.Timeout <= 0 {
		v.errorf("tools.api.timeout", "must be positive")
	}
	if api.MaxResponseBytes <= 0 {
		v.errorf("tools.api.max_response_bytes", "must be positive")
	}
	if api.MaxRedirects < 0 || api.MaxRedirects > 10 {
		v.errorf("tools.api.max_redirects", "must be between 0 and 10")
	}
}

func (v *validator) checkCode(c Code) {
	for i, l := range c.Languages {
		if l != "starlark" {
			v.errorf(fmt.Sprintf("tools.code.languages[%d]", i), "unsupported language %q (supported: starlark)", l)
		}
	}
	pos := map[string]int64{
		"max_memory_mb": int64(c.MaxMemoryMB), "cpu_seconds": int64(c.CPUSeconds), "max_output_bytes": c.MaxOutputBytes,
		"max_open_files": int64(c.MaxOpenFiles), "timeout": int64(c.Timeout), "max_steps": int64(min(c.MaxSteps, 1<<62)),
	}
	for k, n := range pos {
		if n <= 0 {
			v.errorf("tools.code."+k, "must be positive")
		}
	}
}

// checkWitnessKey checks the shape of a witness's verifier key
// (C2SP signed-note "NAME+HASH+BASE64", an Ed25519 key of type 0x04
// cosignature/v1, or 0x01).
func checkWitnessKey(k string) error {
	parts := strings.SplitN(k, "+", 3) // base64 may hold '+' too
	if len(parts) != 3 || parts[0] == "" || len(parts[1]) != 8 {
		return fmt.Errorf("%q is not a verifier key: want NAME+HASH+BASE64 as `agentmesh witness key` prints it", k)
	}
	b, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(b) != 33 || (b[0] != 0x04 && b[0] != 0x01) {
		return fmt.Errorf("%q is not an Ed25519 witness key (cosignature/v1)", k)
	}
	return nil
}

func (v *validator) checkUpstreams(ups []Upstream) {
	names := map[string]bool{}
	for i, u := range ups {
		p := fmt.Sprintf("upstreams[%d]", i)
		if err := identity.ValidName(u.Name); err != nil {
			v.errorf(p+".name", "upstream %v", err)
		} else if strings.Contains(u.Name, "__") {
			v.errorf(p+".name", "upstream names must not contain \"__\" (it separates the namespace from the tool)")
		}
		if names[u.Name] {
			v.errorf(p+".name", "upstream name %q is used twice", u.Name)
		}
		names[u.Name] = true
		switch {
		case u.Command == "" && u.URL == "":
			v.errorf(p, "upstream %q needs either command (stdio) or url (streamable HTTP)", u.Name)
		case u.Command != "" && u.URL != "":
			v.errorf(p, "upstream %q has both command and url; choose one", u.Name)
		case u.URL != "":
			if pu, err := url.Parse(u.URL); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				v.errorf(p+".url", "want an http(s) URL, got %q", u.URL)
			}
			if len(u.Args) > 0 || len(u.Env) > 0 || u.Cwd != "" {
				v.errorf(p, "args, env and cwd apply to command upstreams only")
			}
		case u.Command != "":
			if len(u.Headers) > 0 {
				v.errorf(p+".headers", "headers apply to url upstreams only")
			}
		}
		for j, g := range u.ReadOnlyTools {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				v.errorf(fmt.Sprintf("%s.read_only_tools[%d]", p, j), "%q is not a tool name or glob", g)
			}
		}
		if u.Pin != "" && u.Pin != "strict" && u.Pin != "new-allowed" {
			v.errorf(p+".pin", "pin must be \"strict\" or \"new-allowed\", got %q", u.Pin)
		}
		if u.Timeout < 0 {
			v.errorf(p+".timeout", "must not be negative")
		}
		if u.Prefix != nil && *u.Prefix != "" && !validToolPrefix(*u.Prefix) {
			v.errorf(p+".prefix", "prefix %q may contain only letters, digits, '_', '-' and '.' (MCP tool names)", *u.Prefix)
		}
	}
	if len(ups) > 1 {
		for i, u := range ups {
			if u.Prefix != nil && *u.Prefix == "" {
				v.errorf(fmt.Sprintf("upstreams[%d].prefix", i), "an empty prefix is allowed only with a single upstream (tool names would collide)")
			}
		}
	}
}

func validToolPrefix(p string) bool {
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
