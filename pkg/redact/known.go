package redact

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// RuleConfiguredSecret labels a value from Options.Secrets: a credential
// the configuration hands to a tool or an upstream (secret references,
// pkg/secretref), redacted wherever it appears.
const RuleConfiguredSecret = "configured-secret"

// knownSecrets finds the configured secret values by exact match. It needs
// no timeout of its own: a few strings.Index scans per value, linear in
// the text.
type knownSecrets struct {
	// needles are the values and the forms they take inside a JSON
	// string, longest first.
	needles []string
}

func newKnownSecrets(values []string) *knownSecrets {
	k := &knownSecrets{}
	for _, v := range values {
		if v == "" {
			continue
		}
		k.needles = append(k.needles, v)
		if j := jsonEscaped(v); j != v {
			k.needles = append(k.needles, j)
		}
	}
	slices.SortFunc(k.needles, func(a, b string) int { return len(b) - len(a) })
	k.needles = slices.Compact(k.needles)
	if len(k.needles) == 0 {
		return nil
	}
	return k
}

// jsonEscaped is v as it appears between the quotes of a JSON string
// written without HTML escaping (a value with a quote, a backslash or a
// newline looks different inside JSON text an upstream returns as text).
func jsonEscaped(v string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return v
	}
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

// find appends a finding for every occurrence of a needle in s (leftmost,
// not overlapping: what is left between two findings holds no needle).
func (k *knownSecrets) find(s string, out []Finding) []Finding {
	if k == nil {
		return out
	}
	for _, n := range k.needles {
		for i := 0; i <= len(s)-len(n); {
			j := strings.Index(s[i:], n)
			if j < 0 {
				break
			}
			out = append(out, Finding{RuleID: RuleConfiguredSecret, Start: i + j, End: i + j + len(n)})
			i += j + len(n)
		}
	}
	return out
}

// RedactKnown replaces the configured secrets (Options.Secrets) in s, and
// nothing else. It is for text that is not a tool's output but may still
// carry a credential, such as an upstream's stderr lines, and it is fast
// enough for that: no detector runs, so it needs no timeout.
func (r *Redactor) RedactKnown(s string) string {
	if r == nil || r.known == nil {
		return s
	}
	return applyFindings(s, mergeFindings(r.known.find(s, nil)))
}
