// Package tools defines what a built-in governed tool is. Each tool lives in
// its own package under pkg/tools/ and knows only its own job and its own
// guards (roots, allowlists, read-only databases, sandbox limits); identity,
// scopes, policy, redaction, audit and trust are applied around every call
// by pkg/governance, which no tool can bypass.
package tools

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/scope"
)

// Tool is a built-in tool.
type Tool interface {
	// Definition is the MCP tool definition: name, description, JSON
	// schema of the arguments, annotations (read-only, destructive).
	Definition() mcp.Tool
	// Access says which resource a call with these arguments touches and
	// how, in canonical form, for the capability-scope check that runs
	// before the tool. It validates the arguments; a malformed argument is
	// a *Refusal (check "arguments"). A guard's refusal may come with the
	// Access the call would have made (Kind set), so that what it would
	// have sent can still be judged.
	Access(args map[string]any) (Access, error)
	// Call runs the tool. A refusal by the tool's own guards (path escape,
	// SSRF, write on a read-only database, sandbox limit) is returned as a
	// *Refusal; any other error is the tool failing.
	Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error)
}

// Kinded is a Tool whose calls all have one kind and action, whatever
// the arguments: listings use it to show a caller only the tools its
// scopes could grant.
type Kinded interface {
	AccessKind() Access
}

// Access is one resource access, as scopes name it: for filesystem tools a
// cleaned virtual path ("/data/users.json"), for database_query the database
// name, for api_call the URL, for code_execute the language.
type Access struct {
	Kind   scope.Kind
	Target string
	Action scope.Action
	// Changes says the call can change the world outside agentmesh (a
	// file written, a request other than GET or HEAD, an upstream tool
	// not configured read-only): its intent is then logged durably before
	// the tool runs (write-ahead), so nothing happens that the log does
	// not show.
	Changes bool
	// Public says the call reveals nothing beyond the tool's own
	// description (listing the mounts at "/"): no capability scope is
	// needed for it.
	Public bool
}

func (a Access) String() string { return fmt.Sprintf("%s %s:%s", a.Action, a.Kind, a.Target) }

// Refusal is a tool's own guard saying no. The pipeline records it as
// result "blocked" with rule "builtin:<Check>".
type Refusal struct {
	// Check names the guard: "path", "traversal", "root", "symlink",
	// "hardlink", "blocked-glob", "special-file", "size", "binary",
	// "read-only", "destructive", "statement", "timeout", "database",
	// "ssrf", "endpoint", "method", "redirect", "response", "language",
	// "sandbox-memory", "sandbox-cpu", "sandbox-steps", "sandbox-timeout",
	// "sandbox-output", "arguments", "secret" (secrets sent out in the
	// parameters), "tool-pin" (an upstream tool whose definition is not
	// approved). Reveals says what each shows about the caller.
	Check string
	// Reason is a sentence for the model and the audit log.
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// Reveal is what a refusal shows about the caller's intent, which is what
// trust scores (docs/trust.md).
type Reveal int

const (
	// Mistake: an honest mistake (a path in no mount, a write to a
	// read-only mount, an unknown database, malformed arguments, an
	// endpoint or language that is not allowed, a resource limit).
	Mistake Reveal = iota
	// Attack: an attack signature (traversal, symlink or hard-link escape,
	// SSRF to private or disguised addresses, destructive or escaping SQL,
	// blocked secret files, secrets sent out).
	Attack
	// Nothing: not the caller's doing (an upstream changed its tool).
	Nothing
)

// attackChecks are the guards whose refusal reveals an attack.
var attackChecks = map[string]bool{
	"traversal": true, "symlink": true, "hardlink": true, "ssrf": true, "statement": true,
	"destructive": true, "blocked-glob": true, "secret": true,
}

// Reveals classifies the refusal by its check.
func (r *Refusal) Reveals() Reveal {
	switch {
	case attackChecks[r.Check]:
		return Attack
	case r.Check == "tool-pin":
		return Nothing
	}
	return Mistake
}

// Refuse returns a *Refusal.
func Refuse(check, format string, args ...any) *Refusal {
	return &Refusal{Check: check, Reason: fmt.Sprintf(format, args...)}
}

// StringArg returns a required string argument, or a *Refusal.
func StringArg(args map[string]any, name string) (string, error) {
	v, ok := args[name]
	if !ok {
		return "", Refuse("arguments", "missing required argument %q", name)
	}
	s, ok := v.(string)
	if !ok {
		return "", Refuse("arguments", "argument %q must be a string, got %T", name, v)
	}
	return s, nil
}

// OptionalString returns a string argument or def when absent.
func OptionalString(args map[string]any, name, def string) (string, error) {
	if _, ok := args[name]; !ok {
		return def, nil
	}
	return StringArg(args, name)
}

type accessCheckKey struct{}

// WithAccessCheck returns ctx carrying check. The governance pipeline
// passes it to every tool call: a tool whose call lands somewhere other
// than its Access said (a symbolic link inside a mount, say) calls
// CheckAccess with where it really landed, so the capability scopes apply
// there too.
func WithAccessCheck(ctx context.Context, check func(Access) error) context.Context {
	return context.WithValue(ctx, accessCheckKey{}, check)
}

// CheckAccess runs the check in ctx on a; without one (a tool used outside
// the pipeline) it allows.
func CheckAccess(ctx context.Context, a Access) error {
	if check, ok := ctx.Value(accessCheckKey{}).(func(Access) error); ok {
		return check(a)
	}
	return nil
}
