package policy

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// SecretDetector finds secrets and personal data in text: the detectors of
// pkg/redact, behind has_secret(text). An engine without one fails every
// condition that calls has_secret (closed).
type SecretDetector interface {
	HasSecret(ctx context.Context, s string) (bool, error)
}

// Limits that keep conditions cheap. expr has no CPU budget, so the cost of
// a condition is bounded by construction: at most MaxConditionNodes nodes,
// no loops but the list predicates (all, any, none, one, filter, count),
// which may not nest, no `let`, no ranges (a..b), regular expressions only
// as literals (RE2: linear time), and inputs capped in size. The work of one
// condition is therefore at most proportional to its size times its input.
const (
	// MaxConditionBytes is the longest condition accepted.
	MaxConditionBytes = 4096
	// MaxConditionNodes caps the syntax tree of one condition.
	MaxConditionNodes = 200
	// DefaultMaxOutputBytes caps the output post-call rules see; a larger
	// output fails the post-call stage closed.
	DefaultMaxOutputBytes = 1 << 20
	// DefaultMaxParamsBytes caps the params pre-call rules see (the sum of
	// all keys and strings, 8 bytes per other value).
	DefaultMaxParamsBytes = 1 << 20
	// maxParamsDepth caps the nesting of params.
	maxParamsDepth = 64
	// MaxFileBytes is the largest policy or policy test file read.
	MaxFileBytes = 4 << 20
)

// The variables of the condition environment (DESIGN.md, "Policy files").
const (
	varTool         = "tool"
	varParams       = "params"
	varOutput       = "output"
	varAgent        = "agent"
	varTrustScore   = "trust_score"
	varClient       = "client"
	varUpstream     = "upstream"
	varUpstreamTool = "upstream_tool"
	varMethod       = "method"
	varURI          = "uri"
	varCaller       = "caller"
	fnHasSecret     = "has_secret"
	fnGlob          = "glob"
	// fnParam is what params.NAME compiles to (see paramPatch). The dot
	// keeps conditions from naming it: it is not an identifier.
	fnParam = "params.get"
	// fnString replaces the built-in string() after type checking (see
	// stringPatch).
	fnString = "string.of"
	// fnGlobTyped replaces glob after type checking (see fastCalls).
	fnGlobTyped = "glob.typed"
)

// typeEnv gives expr the type of every name a condition may use: unknown
// names and type errors are compile errors. A map (rather than a struct)
// because expr reads map environments without reflection or allocation.
var typeEnv = map[string]any{
	varTool:         "",
	varParams:       map[string]any(nil),
	varOutput:       "",
	varAgent:        "",
	varTrustScore:   0,
	varClient:       "",
	varUpstream:     "",
	varUpstreamTool: "",
	varMethod:       "",
	varURI:          "",
	varCaller:       noCaller,
	fnHasSecret:     func(string) (bool, error) { return false, nil },
	fnParam:         func(any) any { return nil },
	fnString:        stringOf,
	fnGlobTyped:     globTyped,
}

// CallerEnv is `caller` in conditions: who made the call (DESIGN.md, "Who
// calls"). Its members are checked at load like every name: `caller.sub`
// compiles, `caller.subject` is an error with its line and column.
//
//	caller.id         "oauth:ISS#SUB", "key:NAME", "mtls:NAME", "local:USER"
//	caller.kind       oauth, apikey, mtls, local, anonymous
//	caller.iss, .sub  the access token's issuer and subject (OAuth)
//	caller.client_id  the OAuth client the token was issued to
//	caller.name       an API key's or certificate's caller name, the OS user
//	caller.scopes     the token's or key's scopes (list of strings)
//	caller.groups     the token's groups claim, when configured
//	caller.claims     other configured claims, by name
type CallerEnv struct {
	ID       string         `expr:"id"`
	Kind     string         `expr:"kind"`
	Iss      string         `expr:"iss"`
	Sub      string         `expr:"sub"`
	ClientID string         `expr:"client_id"`
	Name     string         `expr:"name"`
	Scopes   []string       `expr:"scopes"`
	Groups   []string       `expr:"groups"`
	Claims   map[string]any `expr:"claims"`
}

// noCaller is the caller of calls that name none.
var noCaller = &CallerEnv{}

// stringOf is string(v): v itself when it is a string (the built-in
// formats it anew, which allocates), else v formatted as the built-in does.
func stringOf(v any) any {
	if _, ok := v.(string); ok {
		return v
	}
	return fmt.Sprintf("%v", v)
}

// builtins are the expr built-in functions conditions may call. The others
// are disabled: they allocate in proportion to their arguments (repeat,
// replace), depend on the clock (now, date), parse untrusted input
// (fromJSON, fromBase64) or are not needed.
var builtins = []string{
	"all", "any", "none", "one", "filter", "count",
	"len", "type", "abs", "int", "float", "string",
	"lower", "upper", "trim", "trimPrefix", "trimSuffix",
	"split", "join", "indexOf", "hasPrefix", "hasSuffix",
	"keys", "values", "first", "last", "get", "min", "max", "toJSON",
}

// Variables lists the names of the condition environment, for messages and
// documentation.
func Variables() []string {
	var names []string
	for name, v := range typeEnv {
		if reflect.TypeOf(v).Kind() != reflect.Func {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Functions lists the functions conditions may call.
func Functions() []string {
	names := append([]string{fnGlob, fnHasSecret}, builtins...)
	sort.Strings(names)
	return names
}

func isBuiltinName(name string) bool {
	for _, b := range builtins {
		if b == name {
			return true
		}
	}
	return false
}

func variableList() string { return strings.Join(Variables(), ", ") }
