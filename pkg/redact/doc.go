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
//  1. Own rules (rules.go, keys.go, pii.go): linear hand-written scanners
//     for what gitleaks does not cover well in tool output — values of
//     sensitive key/value pairs in plain text, YAML, JSON, XML, INI/env,
//     URL queries and connection strings; passwords in URLs; Authorization
//     headers; sk-/sk-proj-/sk-ant- AI keys; PEM and OpenSSH private key
//     blocks; JWTs; e-mail addresses, Luhn-valid payment card numbers and
//     mod-97-valid IBANs.
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
// Overlapping findings are merged into one span, and each span is replaced
// by "[REDACTED:<rule-id>]". For key/value pairs only the value is replaced:
// "password: hunter2" becomes "password: [REDACTED:password-pair]".
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
// that gitleaks runs once per document. A string that itself holds a JSON
// object or array is redacted structurally and re-encoded as a string. The
// value of a sensitive key ("password", "api_key", ...) is replaced whole,
// whether it is a string or a number. RedactValue applies the same rules to
// already-decoded values (value.go).
package redact
