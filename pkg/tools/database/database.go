// Package database implements the built-in tool database_query: one SQL
// statement against a configured SQLite file (modernc.org/sqlite), with
// bound parameters, a row cap and a time cap.
//
// A database configured read-only is read-only three times over, each
// layer enough on its own for writes to its file (TestReadOnlyLayers):
//
//  1. how it is opened: a file: URI with mode=ro (the file is opened
//     O_RDONLY; writes fail with SQLITE_READONLY) and query_only=1, both
//     checked on every new connection (sqlite3_db_readonly and PRAGMA
//     query_only) before it is used;
//  2. SQLite's authorizer (sqlite3_set_authorizer), installed on every
//     connection: an allow-list of operations checked while a statement
//     compiles, so writes hidden in CTEs, RETURNING clauses, triggers or
//     views are seen whatever the spelling, and ATTACH (which would create
//     a file even on a read-only connection), VACUUM INTO, transaction
//     control, PRAGMA assignments and load_extension are denied;
//  3. a lexical check, by SQLite's tokenizer rules, that the text is one
//     statement (the driver would otherwise run several, one after the
//     other), and that a read-only database is not sent INSERT, UPDATE,
//     DELETE, REPLACE, CREATE, DROP, ALTER, REINDEX or ANALYZE; it gives
//     clear refusals before anything is compiled.
//
// Refusals (*tools.Refusal) name the check: "read-only", "statement",
// "arguments", "timeout", "database".
package database

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// ToolName is the tool's MCP name.
const ToolName = "database_query"

// Defaults used when an Options limit is zero, and fixed limits.
const (
	DefaultMaxRows = 1000
	DefaultTimeout = 5 * time.Second
	// MaxQueryBytes bounds the SQL text.
	MaxQueryBytes = 64 << 10
	// MaxParams bounds the bound parameters.
	MaxParams = 256
)

// DB is one configured SQLite database.
type DB struct {
	// Name is what calls and scopes use ("database:users").
	Name string
	// HostPath is the database file, already resolved (absolute). It
	// must exist: it is never created.
	HostPath string
	ReadOnly bool
}

// Options configures database_query.
type Options struct {
	// Databases; the first is the default when a call names none.
	Databases []DB
	// MaxRows caps the rows of one result; more are cut off and the result
	// says truncated. Zero means DefaultMaxRows.
	MaxRows int
	// Timeout caps one query; SQLite is interrupted when it passes. Zero
	// means DefaultTimeout.
	Timeout time.Duration
}

// FromConfig builds Options from agentmesh.yaml, resolving database paths
// with cfg.ResolvePath.
func FromConfig(cfg *config.Config) Options {
	c := cfg.Tools.Database
	o := Options{MaxRows: c.MaxRows, Timeout: time.Duration(c.Timeout)}
	for _, d := range c.Databases {
		o.Databases = append(o.Databases, DB{Name: d.Name, HostPath: cfg.ResolvePath(d.Path), ReadOnly: d.ReadOnly})
	}
	return o
}

// Tool is database_query over the configured databases. It is safe for
// concurrent use.
type Tool struct {
	dbs     []*database
	maxRows int
	timeout time.Duration
	layers  layers
}

var _ tools.Tool = (*Tool)(nil)

type database struct {
	DB
	pool *sql.DB
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// New opens every database (a first connection each, so that a missing
// file or a misconfiguration is reported now and not at the first call).
func New(opts Options) (*Tool, error) {
	return newTool(opts, layers{})
}

func newTool(opts Options, l layers) (*Tool, error) {
	t := &Tool{maxRows: opts.MaxRows, timeout: opts.Timeout, layers: l}
	if t.maxRows == 0 {
		t.maxRows = DefaultMaxRows
	}
	if t.timeout == 0 {
		t.timeout = DefaultTimeout
	}
	if t.maxRows < 0 || t.timeout < 0 {
		return nil, errors.New("database: max_rows and timeout must not be negative")
	}
	if len(opts.Databases) == 0 {
		return nil, errors.New("database: no databases configured")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, d := range opts.Databases {
		if !nameRE.MatchString(d.Name) || d.Name == ".." {
			t.Close()
			return nil, fmt.Errorf("database: name %q: use letters, digits, '_', '.', '-' (at most 64)", d.Name)
		}
		if t.lookup(d.Name) != nil {
			t.Close()
			return nil, fmt.Errorf("database: name %q is configured twice", d.Name)
		}
		pool, err := open(ctx, d, l)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("database %s: open %s: %w", d.Name, d.HostPath, err)
		}
		t.dbs = append(t.dbs, &database{DB: d, pool: pool})
	}
	return t, nil
}

// Close closes every pool.
func (t *Tool) Close() error {
	var errs []error
	for _, d := range t.dbs {
		errs = append(errs, d.pool.Close())
	}
	return errors.Join(errs...)
}

// Names returns the configured database names, the default first.
func (t *Tool) Names() []string {
	out := make([]string, len(t.dbs))
	for i, d := range t.dbs {
		out[i] = d.Name
	}
	return out
}

func (t *Tool) lookup(name string) *database {
	for _, d := range t.dbs {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// Definition is the MCP tool definition.
func (t *Tool) Definition() mcp.Tool {
	desc := fmt.Sprintf("Run one SQL statement (SQLite) against a configured database and return its rows as "+
		"{columns, rows, row_count, truncated}. Use ? placeholders with params for values. At most %d rows and %s per query. "+
		"Databases: %v (default %s); read-only databases accept only reading statements.", t.maxRows, t.timeout, t.Names(), t.Names()[0])
	return mcp.NewTool(ToolName,
		mcp.WithDescription(desc),
		mcp.WithString("query", mcp.Required(), mcp.Description("One SQL statement, e.g. SELECT name FROM users WHERE role = ?")),
		mcp.WithArray("params", mcp.Description("Values bound to the ? placeholders, in order: strings, numbers, booleans or null")),
		mcp.WithString("database", mcp.Description("Database name; default "+t.Names()[0]), mcp.Enum(t.Names()...)),
		mcp.WithOutputSchema[Result](),
		mcp.WithReadOnlyHintAnnotation(t.allReadOnly()),
		mcp.WithDestructiveHintAnnotation(!t.allReadOnly()),
		mcp.WithIdempotentHintAnnotation(t.allReadOnly()),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func (t *Tool) allReadOnly() bool {
	for _, d := range t.dbs {
		if !d.ReadOnly {
			return false
		}
	}
	return true
}

// Access names the database the call queries, after the lexical checks
// that need no database: a statement that escapes its database or runs
// several is refused as "statement", a destructive one on a read-only
// database as "destructive", any other write there as "read-only".
// AccessKind is the kind and action of every call (tools.Kinded).
func (t *Tool) AccessKind() tools.Access {
	return tools.Access{Kind: scope.Database, Action: scope.Query}
}

func (t *Tool) Access(args map[string]any) (tools.Access, error) {
	req, err := t.parse(args)
	if err != nil {
		return tools.Access{}, err
	}
	if !t.layers.noLexical {
		if err := checkStatement(req.query, req.db.ReadOnly, req.db.Name); err != nil {
			return tools.Access{}, err
		}
	}
	return tools.Access{Kind: scope.Database, Target: req.db.Name, Action: scope.Query}, nil
}

// Call runs the query.
func (t *Tool) Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error) {
	req, err := t.parse(args)
	if err != nil {
		return nil, err
	}
	if !t.layers.noLexical {
		if err := checkStatement(req.query, req.db.ReadOnly, req.db.Name); err != nil {
			return nil, err
		}
	}
	res, err := t.query(ctx, req)
	if err != nil {
		return nil, err
	}
	text, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultStructured(res, string(text)), nil
}

// writingKinds are the statement kinds a read-only database refuses
// outright. Any other kind (SELECT, WITH, VALUES, EXPLAIN, PRAGMA, or a
// misspelling SQLite will reject) goes on to the authorizer, which checks
// what it does.
var writingKinds = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "REPLACE": true, "CREATE": true,
	"DROP": true, "ALTER": true, "REINDEX": true, "ANALYZE": true,
}

// destructiveKinds destroy or rewrite data: on a read-only database they
// are an attack, not a slip.
var destructiveKinds = map[string]bool{"UPDATE": true, "DELETE": true, "REPLACE": true, "DROP": true, "ALTER": true}

// checkStatement is the lexical layer.
func checkStatement(query string, readOnly bool, name string) error {
	if !singleStatement(query) {
		return tools.Refuse("statement", "the query holds more than one statement; send one statement per call")
	}
	kw := firstKeyword(query)
	switch kw {
	case "ATTACH", "DETACH":
		return tools.Refuse("statement", "%s is not allowed: a query may only use its own database", kw)
	case "VACUUM":
		return tools.Refuse("statement", "VACUUM is not allowed")
	case "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE":
		return tools.Refuse("statement", "transaction statements are not allowed: each query runs on its own")
	}
	if readOnly && destructiveKinds[kw] {
		return tools.Refuse("destructive", "%s statements are not allowed: the database %s is read-only", kw, name)
	}
	if readOnly && writingKinds[kw] {
		return tools.Refuse("read-only", "%s statements are not allowed: the database %s is read-only", kw, name)
	}
	return nil
}
