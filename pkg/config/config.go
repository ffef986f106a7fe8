// Package config defines agentmesh.yaml: its schema, its defaults, strict
// decoding with FILE:LINE:COL errors, validation, and how the configuration
// file and the state directory are found (DESIGN.md, "Configuration and
// state").
//
// Every key is documented in the commented example that `agentmesh init`
// writes (example.yaml in this package); TestExampleCoversSchema keeps the
// two in step.
package config

import (
	"time"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// Config is the whole agentmesh.yaml.
type Config struct {
	Agent      Agent      `yaml:"agent"`
	Identity   Identity   `yaml:"identity"`
	StateDir   string     `yaml:"state_dir"`
	State      State      `yaml:"state"`
	Policies   Policies   `yaml:"policies"`
	Governance Governance `yaml:"governance"`
	Trust      Trust      `yaml:"trust"`
	Scopes     []Scope    `yaml:"scopes"`
	Tools      Tools      `yaml:"tools"`
	Redaction  Redaction  `yaml:"redaction"`
	Audit      Audit      `yaml:"audit"`
	Upstreams  []Upstream `yaml:"upstreams"`
	HTTP       HTTP       `yaml:"http"`
	Auth       Auth       `yaml:"auth"`
	Telemetry  Telemetry  `yaml:"telemetry"`
	// Compliance lists the compliance frameworks in force (soc2, hipaa):
	// see compliance.go.
	Compliance []string `yaml:"compliance"`

	// Source says where the configuration came from; it is not read from
	// the file.
	Source Source `yaml:"-"`
	// refPos is where each value holding a secret reference was written
	// (secrets.go), for errors at resolution time.
	refPos map[string]yamlpos.Pos
}

// State says where shared state lives beyond the state directory.
type State struct {
	// Database, when set, is a PostgreSQL URL (postgres://user@host/db):
	// the audit log, trust states, rate-limit windows, tool pins and API
	// keys live there, shared by every replica of the identity (a fleet of
	// `serve --http`). Empty: the state directory's SQLite database.
	// AGENTMESH_DATABASE_URL overrides it, and keeps a password out of the
	// file. Keys stay files in the state directory.
	Database string `yaml:"database"`
}

// Agent names the server and the person accountable for it.
type Agent struct {
	// Name becomes the DID: did:agentmesh:NAME.
	Name string `yaml:"name"`
	// Sponsor is the e-mail address of the accountable person.
	Sponsor     string `yaml:"sponsor"`
	Description string `yaml:"description"`
}

// Identity configures credentials.
type Identity struct {
	// CredentialTTL is the lifetime of each credential.
	CredentialTTL Duration `yaml:"credential_ttl"`
	// MaxCredentialTTL is the longest lifetime a verifier accepts, whatever
	// a credential claims.
	MaxCredentialTTL Duration `yaml:"max_credential_ttl"`
	// RotateAt is the fraction of the lifetime after which a serving process
	// renews its credential (0.5: at half-life).
	RotateAt float64 `yaml:"rotate_at"`
	// Audience is the credential's aud claim; empty means the server's DID.
	Audience string `yaml:"audience"`
}

// Policies says which policy files apply.
type Policies struct {
	// Paths are policy files or directories of *.yaml files, relative to the
	// configuration file's directory.
	Paths []string `yaml:"paths"`
	// Watch reloads policies when a file changes (and on SIGHUP).
	Watch bool `yaml:"watch"`
}

// Governance holds pipeline-wide switches.
type Governance struct {
	// ShadowMode records every decision but enforces none.
	ShadowMode bool `yaml:"shadow_mode"`
	// MaxOutputBytes caps a tool's result; larger results are refused.
	MaxOutputBytes int64 `yaml:"max_output_bytes"`
}

// Trust configures the trust score (0-1000).
type Trust struct {
	Initial int `yaml:"initial"`
	// RevokeBelow: below this score every call is refused (latched until
	// `agentmesh trust reset`).
	RevokeBelow int `yaml:"revoke_below"`
	// Tiers maps tier names to the lowest score of the tier.
	Tiers map[string]int `yaml:"tiers"`
	// KeepWhenRevoked lists tools still allowed while revoked.
	KeepWhenRevoked []string `yaml:"keep_when_revoked"`
	// RecoveryAfter is the quiet period after which the score recovers.
	RecoveryAfter Duration `yaml:"recovery_after"`
	// RecoveryPerHour is how many points per hour it recovers, at most up
	// to Initial.
	RecoveryPerHour int `yaml:"recovery_per_hour"`
	// DailyGainAboveInitial bounds what allowed calls add per day above
	// Initial: good behaviour cannot build a reserve to spend on attacks.
	DailyGainAboveInitial int `yaml:"daily_gain_above_initial"`
	// RepeatWindow: the same refusal (tool, check, target) costs once per
	// window.
	RepeatWindow Duration `yaml:"repeat_window"`
	// Weights are what events cost (docs/trust.md).
	Weights TrustWeights `yaml:"weights"`
}

// TrustWeights are the points trust events cost, or earn.
type TrustWeights struct {
	Allowed           int           `yaml:"allowed"`
	Mistake           int           `yaml:"mistake"`
	Attack            int           `yaml:"attack"`
	RateLimited       int           `yaml:"rate_limited"`
	CredentialFailure int           `yaml:"credential_failure"`
	Policy            PolicyWeights `yaml:"policy"`
}

// PolicyWeights are the costs of a policy block by severity.
type PolicyWeights struct {
	Low      int `yaml:"low"`
	Medium   int `yaml:"medium"`
	High     int `yaml:"high"`
	Critical int `yaml:"critical"`
}

// Scope is one capability scope granted by every credential.
type Scope struct {
	Resources  []string `yaml:"resources"`
	Actions    []string `yaml:"actions"`
	TTLMinutes int      `yaml:"ttl_minutes"`
}

// Tools configures the built-in tools.
type Tools struct {
	// WithUpstreams serves the built-in tools also when upstream MCP
	// servers are governed (by default a governed server is served alone:
	// `serve -- CMD` exposes that server's tools only).
	WithUpstreams bool       `yaml:"with_upstreams"`
	Filesystem    Filesystem `yaml:"filesystem"`
	Database      Database   `yaml:"database"`
	API           API        `yaml:"api"`
	Code          Code       `yaml:"code"`
}

// Filesystem configures filesystem_read, filesystem_list, filesystem_write.
type Filesystem struct {
	Enabled bool   `yaml:"enabled"`
	Roots   []Root `yaml:"roots"`
	// AllowHardlinks permits files with more than one hard link inside
	// roots; a hard link is an escape that path checks cannot see.
	AllowHardlinks bool `yaml:"allow_hardlinks"`
	// BlockedGlobs are refused even inside roots ("**/.ssh/**").
	BlockedGlobs  []string `yaml:"blocked_globs"`
	MaxReadBytes  int64    `yaml:"max_read_bytes"`
	MaxWriteBytes int64    `yaml:"max_write_bytes"`
}

// Access levels of a filesystem root.
const (
	AccessRead      = "read"
	AccessReadWrite = "read-write"
)

// Root mounts a host directory at a virtual path.
type Root struct {
	// Path is the host directory, relative to the configuration file's
	// directory; ${state_dir} expands to the state directory.
	Path string `yaml:"path"`
	// Mount is the virtual path tools see ("/data").
	Mount  string `yaml:"mount"`
	Access string `yaml:"access"`
}

// Database configures database_query.
type Database struct {
	Enabled   bool         `yaml:"enabled"`
	Databases []DatabaseDB `yaml:"databases"`
	MaxRows   int          `yaml:"max_rows"`
	Timeout   Duration     `yaml:"timeout"`
}

// DatabaseDB is one SQLite database file.
type DatabaseDB struct {
	// Name is what scopes and calls use ("database:users").
	Name string `yaml:"name"`
	Path string `yaml:"path"`
	// ReadOnly opens the file read-only and installs an authorizer that
	// refuses writes.
	ReadOnly bool `yaml:"read_only"`
}

// API configures api_call.
type API struct {
	Enabled          bool       `yaml:"enabled"`
	Endpoints        []Endpoint `yaml:"endpoints"`
	Timeout          Duration   `yaml:"timeout"`
	MaxResponseBytes int64      `yaml:"max_response_bytes"`
	MaxRedirects     int        `yaml:"max_redirects"`
}

// Endpoint is one allowed URL pattern.
type Endpoint struct {
	URL     string   `yaml:"url"`
	Methods []string `yaml:"methods"`
	// AllowPrivate permits loopback, private and link-local addresses for
	// this endpoint (refused by default after DNS resolution).
	AllowPrivate bool `yaml:"allow_private"`
	// Headers are added by agentmesh to every request to this endpoint
	// (an Authorization header, an API key), their values usually secret
	// references (secrets.go); the model never sees or sets them.
	Headers map[string]string `yaml:"headers"`
}

// Code configures code_execute.
type Code struct {
	Enabled        bool     `yaml:"enabled"`
	Languages      []string `yaml:"languages"`
	MaxMemoryMB    int      `yaml:"max_memory_mb"`
	CPUSeconds     int      `yaml:"cpu_seconds"`
	Timeout        Duration `yaml:"timeout"`
	MaxSteps       uint64   `yaml:"max_steps"`
	MaxOutputBytes int64    `yaml:"max_output_bytes"`
	MaxOpenFiles   int      `yaml:"max_open_files"`
}

// Redaction configures the secret and PII detectors.
type Redaction struct {
	Enabled bool `yaml:"enabled"`
	// Outputs scans every tool output; Params scans params before they are
	// stored in the audit log.
	Outputs  bool     `yaml:"outputs"`
	Params   bool     `yaml:"params"`
	Gitleaks bool     `yaml:"gitleaks"`
	PII      bool     `yaml:"pii"`
	Timeout  Duration `yaml:"timeout"`
	// PHI runs the protected health information detectors; on whatever
	// this says when compliance lists hipaa.
	PHI bool `yaml:"phi"`
}

// Audit configures the audit log.
type Audit struct {
	// Synchronous is the SQLite durability: "full" (fsync per commit) or
	// "normal" (WAL without fsync per commit: faster, may lose the last
	// commits on power loss, never corrupts).
	Synchronous string `yaml:"synchronous"`
	// BatchWindow > 0 is the relaxed durability mode: calls return once
	// their entry is queued, and queued entries are committed together at
	// least this often. A crash loses at most one window of entries.
	BatchWindow Duration `yaml:"batch_window"`
	// MaxParamBytes: larger params are stored as their SHA-256 only.
	MaxParamBytes int `yaml:"max_param_bytes"`
	// Witness keeps a copy of the latest checkpoint outside the state
	// directory to detect rollback.
	Witness bool `yaml:"witness"`
	// Witnesses are external C2SP tlog-witness servers that serve submits
	// checkpoints to, off the call path.
	Witnesses []AuditWitness `yaml:"witnesses"`
	// Retention is the declared minimum time audit entries are kept
	// (compliance.go); agentmesh itself never deletes them.
	Retention Retention `yaml:"retention"`
}

// AuditWitness is an external witness (https://c2sp.org/tlog-witness).
type AuditWitness struct {
	// URL is its submission prefix (add-checkpoint is URL/add-checkpoint).
	URL string `yaml:"url"`
	// Key is its verifier key (NAME+HASH+BASE64, cosignature/v1).
	Key string `yaml:"key"`
}

// Upstream is an existing MCP server to govern.
type Upstream struct {
	Name    string            `yaml:"name"`
	Command string            `yaml:"command"`
	Args    []string          `yaml:"args"`
	Env     map[string]string `yaml:"env"`
	Cwd     string            `yaml:"cwd"`
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	// Prefix names the upstream's tools; default "NAME__".
	Prefix *string `yaml:"prefix"`
	// Pin is "strict" (new tools blocked until approved) or "new-allowed".
	Pin string `yaml:"pin"`
	// Timeout bounds each forwarded request; default 2m.
	Timeout Duration `yaml:"timeout"`
	// ReadOnlyTools lists the upstream's tools (its own names, globs
	// allowed) that cannot change anything: their calls are logged once,
	// after they run. Every other upstream tool's call has its intent
	// logged durably before it is forwarded (write-ahead).
	ReadOnlyTools []string `yaml:"read_only_tools"`
	// TrustAnnotations honours the upstream's own readOnlyHint as if its
	// tools were listed in read_only_tools: a claim by the party being
	// governed, so off by default.
	TrustAnnotations bool `yaml:"trust_annotations"`
}

// Default returns the embedded defaults: what `agentmesh serve` uses with no
// configuration file at all.
func Default() Config {
	return Config{
		Agent: Agent{Name: "mcp-tool-server", Sponsor: PlaceholderSponsor},
		Identity: Identity{
			CredentialTTL:    Duration(15 * time.Minute),
			MaxCredentialTTL: Duration(60 * time.Minute),
			RotateAt:         0.5,
		},
		Policies:   Policies{Watch: true},
		Governance: Governance{MaxOutputBytes: 1 << 20},
		Trust: Trust{
			Initial:     800,
			RevokeBelow: 300,
			Tiers: map[string]int{
				"untrusted": 0, "probationary": 300, "standard": 500, "trusted": 700, "verified": 900,
			},
			RecoveryAfter:         Duration(time.Hour),
			RecoveryPerHour:       10,
			DailyGainAboveInitial: 10,
			RepeatWindow:          Duration(time.Hour),
			Weights: TrustWeights{Allowed: 1, Mistake: 5, Attack: 100, RateLimited: 20, CredentialFailure: 100,
				Policy: PolicyWeights{Low: 10, Medium: 25, High: 50, Critical: 100}},
		},
		Scopes: []Scope{
			{Resources: []string{"filesystem:/data/*"}, Actions: []string{"read", "list", "write"}, TTLMinutes: 15},
			{Resources: []string{"database:*"}, Actions: []string{"query"}, TTLMinutes: 15},
			{Resources: []string{"api:https://api.weather.com/*"}, Actions: []string{"call"}, TTLMinutes: 15},
			{Resources: []string{"code:starlark"}, Actions: []string{"execute"}, TTLMinutes: 15},
			{Resources: []string{"mcp:*/*"}, Actions: []string{"call", "read"}, TTLMinutes: 15},
		},
		Tools: Tools{
			Filesystem: Filesystem{
				Enabled:       true,
				Roots:         []Root{{Path: "${state_dir}/data", Mount: "/data", Access: AccessRead}},
				BlockedGlobs:  []string{"**/.ssh/**", "**/.env", "**/*.pem", "**/id_rsa*"},
				MaxReadBytes:  1 << 20,
				MaxWriteBytes: 1 << 20,
			},
			Database: Database{
				Enabled:   true,
				Databases: []DatabaseDB{{Name: "users", Path: "${state_dir}/data/users.db", ReadOnly: true}},
				MaxRows:   1000,
				Timeout:   Duration(5 * time.Second),
			},
			API: API{
				Enabled:          true,
				Endpoints:        []Endpoint{{URL: "https://api.weather.com/*", Methods: []string{"GET"}}},
				Timeout:          Duration(10 * time.Second),
				MaxResponseBytes: 1 << 20,
				MaxRedirects:     3,
			},
			Code: Code{
				Enabled:        true,
				Languages:      []string{"starlark"},
				MaxMemoryMB:    256,
				CPUSeconds:     5,
				Timeout:        Duration(10 * time.Second),
				MaxSteps:       10_000_000,
				MaxOutputBytes: 64 << 10,
				MaxOpenFiles:   64,
			},
		},
		Redaction: Redaction{Enabled: true, Outputs: true, Params: true, Gitleaks: true, PII: true, Timeout: Duration(250 * time.Millisecond)},
		Audit:     Audit{Synchronous: "full", MaxParamBytes: 16 << 10, Witness: true},
		HTTP:      DefaultHTTP(),
		Auth:      defaultAuth(),
	}
}

// PlaceholderSponsor is the sponsor used when none is configured; `status`
// flags it.
const PlaceholderSponsor = "unset@example.invalid"
