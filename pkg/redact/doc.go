// Package redact finds secrets and personal data in text and JSON and
// replaces them with markers that say what was removed.
//
// It is used on MCP tool outputs before they reach a model and on tool-call
// parameters before they are written to the audit log.
//
// # Detection
//
// Two stages run over the same text:
//
//  1. Own rules (rules.go, keys.go, prose.go, pii.go): linear hand-written
//     scanners for what gitleaks does not cover well in tool output —
//     values of sensitive key/value pairs in plain text, YAML, JSON
//     (also JSON whose quotes are escaped any number of times, as in JSON
//     nested in strings: `\"password\": \"x\"`, `\\\"password\\\"...`),
//     XML, INI/env, URL queries and connection strings; passwords in URLs;
//     Authorization headers; sk-/sk-proj-/sk-ant- AI keys; agentmesh's own
//     amk_ API keys; PEM and OpenSSH
//     private key blocks; JWTs; e-mail addresses, Luhn-valid payment card
//     numbers and mod-97-valid IBANs.
//  2. The gitleaks default rule set (gitleaks.go), used as a library and
//     loaded once, lazily. Spans found in stage 1 are first masked with '*'
//     (same length, so offsets stay valid), which removes duplicate work.
//     One keyword pass (keywords.go) decides which gitleaks rules can match
//     at all, as gitleaks' own prefilter does. Three rules whose keywords
//     occur in almost any text and whose expressions are slow in Go
//     (generic-api-key, jwt, vault-service-token) run only on candidate
//     windows that provably contain all their matches (windows.go). Large
//     inputs are scanned in overlapping 8 KB chunks.
//
// With Options.PHI, stage 1 also runs the protected health information
// detectors (phi.go: Social Security, medical record and health plan
// numbers, dates of birth, ICD-10 codes about a person), off by default.
//
// Key names are matched in two ways. A name ending in a secret word
// ("password", "DB_PASSWORD", "client_secret", "x-api-key", "access_token")
// gives the value its pair rule (password-pair, secret-pair, api-key-pair,
// token-pair). A name holding a secret word followed by a qualifier
// ("aws_access_key_id", "DB_PASSWORD_PROD", "secret_key_base",
// "github_token_v2") gives secret-assignment, whatever the value looks
// like, unless the qualifier describes the secret ("password_hint",
// "secret_name", "token_type"; see secretAssignmentKey). secret-assignment
// findings are added after the gitleaks stage and only where no other
// finding covers them, so a recognised format keeps its specific label
// (aws-access-token rather than secret-assignment).
//
// An unquoted value that is the rest of a sentence is not a secret: "How to
// reset your password: click Forgot password." and "Password: must be at
// least 12 characters" are left alone, while "password: hunter2",
// `password = "correct horse battery staple"` (quoted) and
// "PASSWORD=Sup3r$ecret!" are redacted (prose.go describes the rules).
//
// Overlapping findings are merged into one span, and each span is replaced
// by "[REDACTED:<rule-id>]". For key/value pairs only the value is replaced:
// "password: hunter2" becomes "password: [REDACTED:password-pair]".
//
// # Configured secrets
//
// Options.Secrets are values known to be secret because the configuration
// resolved them from references (${env:NAME}, ${file:PATH}: pkg/secretref):
// an upstream's key, an API's Authorization header. They are found by exact,
// case-sensitive match (and in the form they take inside a JSON string),
// before the own rules run, and replaced with
// "[REDACTED:configured-secret]" in text, JSON and values alike, whatever
// the other detectors are set to. RedactKnown applies them alone, for text
// that is not a tool's output (an upstream's stderr).
//
// # Fail closed
//
// Every call is bounded by Options.Timeout. The scan runs on its own
// goroutine under a context with that deadline; if the deadline passes, the
// call returns ErrTimeout and the output is withheld: Result.Withheld is
// true and Result.Text is a "[WITHHELD:...]" marker, never unscanned input.
// The abandoned goroutine sees the cancelled context and stops after the
// gitleaks rule and chunk it is in. Inputs over Options.MaxInput, a
// cancelled caller context, and a scanner that fails to load or panics are
// reported the same way.
//
// # JSON
//
// RedactJSON does not re-encode the document: every string value and object
// key is decoded and scanned, and only tokens that change are spliced back
// into the original bytes, so numbers, key order and formatting are kept
// exactly. All strings of a document are scanned as one batch (batch.go) so
// that gitleaks runs once per document. A string that itself is a JSON
// object or array is redacted structurally and re-encoded as a string; so
// are objects and arrays inside a longer string (code such as
// `x = '{"db": {"password": "..."}}'`, or a JSON string literal in it,
// `json.loads("{\"password\": \"...\"}")`), spliced back in place
// (embedded.go). Either is searched again inside, up to maxEmbeddedDepth (8)
// levels and within a per-call budget of bytes examined and documents
// redacted; beyond those limits, or where a candidate does not parse, the
// plain-text rules, which read escaped quotes at any depth, still apply.
// The value of a sensitive key ("password", "api_key", ...) is replaced
// whole, whether it is a string or a number; under a key-name match
// (secret-assignment) only strings and numbers are, not objects or arrays.
// RedactValue applies the same rules to already-decoded values (value.go).
package redact
