package config

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/agentmesh/agentmesh/pkg/secretref"
	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// Secret references (pkg/secretref: ${env:NAME}, ${file:PATH}) are read in
// the values that carry credentials, and only there:
//
//	upstreams[].env.NAME                         a stdio upstream's environment
//	upstreams[].headers.NAME                     an HTTP upstream's request headers
//	tools.api.endpoints[].headers.NAME           headers api_call adds for an endpoint
//	auth.issuers[].introspection.client_secret   agentmesh's secret at an issuer
//
// Parse checks their syntax (errors at FILE:LINE:COL); ResolveSecrets
// replaces them when a server starts, so the file itself never has to hold
// a secret. References in upstream args and url are refused: a command
// line is visible to every user of the machine, and a URL is printed in
// messages and status.

// secretKind says what a resolved value must not hold.
type secretKind int

const (
	secretEnv    secretKind = iota // an environment variable: no NUL
	secretHeader                   // an HTTP header value: no control characters but tab
	secretOpaque                   // anything
)

// secretField is one configuration value that may hold references.
type secretField struct {
	key   string
	value string
	kind  secretKind
	set   func(string)
}

// secretFields lists the values that may hold references, in file order
// of their sections and key order within maps. The setters write into c.
func (c *Config) secretFields() []secretField {
	var fs []secretField
	mapFields := func(prefix string, m map[string]string, kind secretKind) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fs = append(fs, secretField{key: prefix + "." + k, value: m[k], kind: kind, set: func(v string) { m[k] = v }})
		}
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		mapFields(fmt.Sprintf("upstreams[%d].env", i), u.Env, secretEnv)
		mapFields(fmt.Sprintf("upstreams[%d].headers", i), u.Headers, secretHeader)
	}
	for i := range c.Tools.API.Endpoints {
		mapFields(fmt.Sprintf("tools.api.endpoints[%d].headers", i), c.Tools.API.Endpoints[i].Headers, secretHeader)
	}
	for i := range c.Auth.Issuers {
		in := &c.Auth.Issuers[i].Introspection
		fs = append(fs, secretField{key: fmt.Sprintf("auth.issuers[%d].introspection.client_secret", i), value: in.ClientSecret, kind: secretOpaque,
			set: func(v string) { in.ClientSecret = v }})
	}
	return fs
}

// SecretRef is one secret reference written in the configuration.
type SecretRef struct {
	// Key is the configuration key whose value holds it
	// ("upstreams[0].env.API_KEY").
	Key string
	// Pos is where that value was written (the file alone, or nothing,
	// for a configuration built in code).
	Pos yamlpos.Pos
	Ref secretref.Ref
}

// Where names the reference for messages: "FILE:LINE:COL: KEY: ${...}".
func (r SecretRef) Where() string {
	s := r.Key + ": " + r.Ref.String()
	if p := r.Pos.String(); p != "" {
		s = p + ": " + s
	}
	return s
}

// SecretRefs lists the secret references of the configuration, in order.
// A value whose syntax is wrong (Parse reports it) contributes none.
func (c *Config) SecretRefs() []SecretRef {
	var refs []SecretRef
	for _, f := range c.secretFields() {
		t, err := secretref.Parse(f.value)
		if err != nil {
			continue
		}
		for _, r := range t.Refs() {
			refs = append(refs, SecretRef{Key: f.key, Pos: c.posOf(f.key), Ref: r})
		}
	}
	return refs
}

func (c *Config) posOf(key string) yamlpos.Pos {
	file := c.Source.File
	if p, ok := c.refPos[key]; ok {
		return p
	}
	return yamlpos.Pos{File: file}
}

// Secret is a resolved reference.
type Secret struct {
	SecretRef
	Value string
}

// ShortSecret is the length below which a secret is worth a warning:
// every occurrence of it in a tool's output is redacted, and a short
// value occurs by chance.
const ShortSecret = 8

// ResolveSecrets returns a copy of the configuration in which every value
// that may hold references has them replaced by what r resolves (and
// "$${" escapes undone), and the secrets it resolved. A relative file path
// is taken from the configuration file's directory unless r.Dir is set.
// Every problem is reported (a yamlpos.ErrorList: key, reference and
// why, never a value); on error no configuration is returned.
func (c *Config) ResolveSecrets(r secretref.Resolver) (*Config, []Secret, error) {
	if r.Dir == "" {
		r.Dir = c.Source.Dir()
	}
	out := c.cloneSecretFields()
	cache := map[secretref.Ref]string{}
	var secrets []Secret
	var errs yamlpos.ErrorList
	for _, f := range out.secretFields() {
		t, err := secretref.Parse(f.value)
		if err != nil {
			errs = append(errs, c.posOf(f.key).Errorf("%s: %v", f.key, err))
			continue
		}
		v, err := t.Expand(func(ref secretref.Ref) (string, error) {
			v, ok := cache[ref]
			if !ok {
				var err error
				if v, err = r.Resolve(ref); err != nil {
					return "", err
				}
				cache[ref] = v
			}
			secrets = append(secrets, Secret{SecretRef: SecretRef{Key: f.key, Pos: c.posOf(f.key), Ref: ref}, Value: v})
			return v, nil
		})
		if err == nil {
			err = checkResolved(f.kind, v)
		}
		if err != nil {
			errs = append(errs, c.posOf(f.key).Errorf("%s: %v", f.key, err))
			continue
		}
		f.set(v)
	}
	if err := errs.Err(); err != nil {
		return nil, nil, err
	}
	return out, secrets, nil
}

// checkResolved refuses a value its destination cannot carry; the error
// never holds the value.
func checkResolved(kind secretKind, v string) error {
	switch kind {
	case secretEnv:
		if strings.IndexByte(v, 0) >= 0 {
			return errors.New("the value holds a NUL byte, which an environment variable cannot carry")
		}
	case secretHeader:
		if !httpguts.ValidHeaderFieldValue(v) {
			return errors.New("the value holds a line break or another control character, which an HTTP header cannot carry (a secret file with more than one trailing newline?)")
		}
	}
	return nil
}

// SecretValues are the values of secrets, for the redactor.
func SecretValues(secrets []Secret) []string {
	vs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		vs = append(vs, s.Value)
	}
	return vs
}

// cloneSecretFields copies c deeply enough that setting the secret fields
// of the copy leaves c alone.
func (c *Config) cloneSecretFields() *Config {
	out := *c
	out.Upstreams = slices.Clone(c.Upstreams)
	for i := range out.Upstreams {
		out.Upstreams[i].Env = maps.Clone(out.Upstreams[i].Env)
		out.Upstreams[i].Headers = maps.Clone(out.Upstreams[i].Headers)
	}
	out.Tools.API.Endpoints = slices.Clone(c.Tools.API.Endpoints)
	for i := range out.Tools.API.Endpoints {
		out.Tools.API.Endpoints[i].Headers = maps.Clone(out.Tools.API.Endpoints[i].Headers)
	}
	out.Auth.Issuers = slices.Clone(c.Auth.Issuers)
	return &out
}

// checkSecrets checks the syntax of every value that may hold references,
// the header names and literal header values beside them, and refuses
// references where they would not be resolved.
func (v *validator) checkSecrets(c *Config) {
	for _, f := range c.secretFields() {
		t, err := secretref.Parse(f.value)
		if err != nil {
			v.errorf(f.key, "%s: %v", f.key, err)
			continue
		}
		if len(t.Refs()) > 0 {
			if p, ok := v.pos[f.key]; ok {
				if c.refPos == nil {
					c.refPos = map[string]yamlpos.Pos{}
				}
				c.refPos[f.key] = p
			}
		}
		if lit, ok := t.Literal(); ok && f.kind == secretHeader && !httpguts.ValidHeaderFieldValue(lit) {
			v.errorf(f.key, "%s: a header value cannot hold a line break or another control character", f.key)
		}
	}
	for i, u := range c.Upstreams {
		p := fmt.Sprintf("upstreams[%d]", i)
		for j, a := range u.Args {
			if holdsRef(a) {
				v.errorf(fmt.Sprintf("%s.args[%d]", p, j), "secret references are not resolved in args: every user of this machine can read a command line (ps); pass the secret in env")
			}
		}
		if holdsRef(u.URL) {
			v.errorf(p+".url", "secret references are not resolved in url: send the credential in headers (such as Authorization: \"Bearer ${env:TOKEN}\")")
		}
		v.checkHeaderNames(p+".headers", u.Headers)
	}
	for i, e := range c.Tools.API.Endpoints {
		v.checkHeaderNames(fmt.Sprintf("tools.api.endpoints[%d].headers", i), e.Headers)
	}
}

// holdsRef reports whether s, read as a value that takes references,
// would hold one.
func holdsRef(s string) bool {
	t, err := secretref.Parse(s)
	return err == nil && len(t.Refs()) > 0
}

// checkHeaderNames requires RFC 9110 tokens, each name once whatever its
// case.
func (v *validator) checkHeaderNames(prefix string, h map[string]string) {
	seen := map[string]string{}
	names := slices.Collect(maps.Keys(h))
	sort.Strings(names)
	for _, name := range names {
		key := prefix + "." + name
		if !httpguts.ValidHeaderFieldName(name) {
			v.errorf(key, "%s: %q is not an HTTP header name", key, name)
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if other, dup := seen[canon]; dup {
			v.errorf(key, "%s: header %q is listed twice (as %q too; header names ignore case)", key, name, other)
		}
		seen[canon] = name
	}
}
