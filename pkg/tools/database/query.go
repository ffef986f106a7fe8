package database

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"modernc.org/sqlite"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Result is the structured result of database_query; the text content is
// the same JSON.
type Result struct {
	Database string   `json:"database"`
	Columns  []string `json:"columns"`
	// Rows holds each row's values in column order: numbers, strings,
	// null; a BLOB is a string when it is UTF-8 text and base64 otherwise.
	Rows     [][]any `json:"rows"`
	RowCount int     `json:"row_count"`
	// Truncated is set when the statement had more than max_rows rows.
	Truncated bool `json:"truncated"`
}

// request is a validated call.
type request struct {
	db     *database
	query  string
	params []any
}

var argNames = []string{"query", "params", "database"}

func (t *Tool) parse(args map[string]any) (request, error) {
	for _, k := range sortedKeys(args) {
		if !slices.Contains(argNames, k) {
			return request{}, tools.Refuse("arguments", "unknown argument %q (this tool takes %v)", k, argNames)
		}
	}
	q, err := tools.StringArg(args, "query")
	if err != nil {
		return request{}, err
	}
	switch {
	case strings.TrimSpace(q) == "":
		return request{}, tools.Refuse("arguments", "the query is empty")
	case len(q) > MaxQueryBytes:
		return request{}, tools.Refuse("arguments", "the query is %d bytes; the limit is %d", len(q), MaxQueryBytes)
	case strings.IndexByte(q, 0) >= 0:
		// SQLite would stop reading at the NUL: what it ran would not be
		// what was checked.
		return request{}, tools.Refuse("arguments", "the query contains a NUL byte")
	case !utf8.ValidString(q):
		return request{}, tools.Refuse("arguments", "the query is not valid UTF-8")
	}
	name, err := tools.OptionalString(args, "database", t.dbs[0].Name)
	if err != nil {
		return request{}, err
	}
	db := t.lookup(name)
	if db == nil {
		return request{}, tools.Refuse("database", "there is no database %q; configured: %s", name, strings.Join(t.Names(), ", "))
	}
	params, err := parseParams(args["params"])
	if err != nil {
		return request{}, err
	}
	return request{db: db, query: q, params: params}, nil
}

func parseParams(v any) ([]any, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, tools.Refuse("arguments", "params must be an array, got %T", v)
	}
	if len(list) > MaxParams {
		return nil, tools.Refuse("arguments", "%d params; the limit is %d", len(list), MaxParams)
	}
	out := make([]any, len(list))
	for i, p := range list {
		switch x := p.(type) {
		case nil, string, bool, int64:
			out[i] = x
		case int:
			out[i] = int64(x)
		case float64:
			// JSON has one number type; whole numbers bind as INTEGER so
			// that "id = ?" with 3 matches an INTEGER column exactly.
			if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
				out[i] = int64(x)
			} else {
				out[i] = x
			}
		case json.Number:
			if n, err := x.Int64(); err == nil {
				out[i] = n
			} else if f, err := x.Float64(); err == nil {
				out[i] = f
			} else {
				return nil, tools.Refuse("arguments", "params[%d] is not a number: %s", i, x)
			}
		default:
			return nil, tools.Refuse("arguments", "params[%d] must be a string, number, boolean or null, got %T", i, p)
		}
	}
	return out, nil
}

// query runs one statement on a connection of its own, with the
// authorizer recording what it denies.
func (t *Tool) query(ctx context.Context, req request) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	conn, err := req.db.pool.Conn(ctx)
	if err != nil {
		return nil, t.failure(ctx, req, nil, err)
	}
	defer conn.Close()
	rec := &recorder{}
	if !t.layers.noAuthorizer {
		if err := installRecorder(conn, req.db.ReadOnly, rec); err != nil {
			return nil, t.failure(ctx, req, rec, err)
		}
	}
	rows, err := conn.QueryContext(ctx, req.query, req.params...)
	if err != nil {
		return nil, t.failure(ctx, req, rec, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, t.failure(ctx, req, rec, err)
	}
	res := &Result{Database: req.db.Name, Columns: cols, Rows: [][]any{}}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if len(res.Rows) == t.maxRows {
			res.Truncated = true
			break
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, t.failure(ctx, req, rec, err)
		}
		row := make([]any, len(cols))
		for i, v := range vals {
			row[i] = jsonValue(v)
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, t.failure(ctx, req, rec, err)
	}
	if err := rows.Close(); err != nil {
		return nil, t.failure(ctx, req, rec, err)
	}
	res.RowCount = len(res.Rows)
	return res, nil
}

// failure turns an error into a refusal when a guard caused it, and
// otherwise into an error that names the database, never its host path.
func (t *Tool) failure(ctx context.Context, req request, rec *recorder, err error) error {
	if rec != nil {
		if d := rec.denied(); d != nil {
			return tools.Refuse(d.check, "%s", d.reason)
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return tools.Refuse("timeout", "the query ran longer than %s and was interrupted", t.timeout)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqliteReadOnly && req.db.ReadOnly {
		return tools.Refuse("read-only", "the statement tried to write, and the database %s is read-only", req.db.Name)
	}
	msg := err.Error()
	for _, p := range []string{req.db.HostPath, filepath.Dir(req.db.HostPath)} {
		msg = strings.ReplaceAll(msg, p, "<"+req.db.Name+">")
	}
	return fmt.Errorf("query on %s failed: %s", req.db.Name, msg)
}

// sqliteReadOnly is SQLITE_READONLY, the primary result code of a write on
// a connection opened read-only.
const sqliteReadOnly = 8

// jsonValue makes a column value JSON-friendly.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return x // encoding/json writes base64
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Sprint(x) // JSON has no Inf or NaN
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	default:
		return x
	}
}

// sortedKeys makes the first unknown argument reported deterministic.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
