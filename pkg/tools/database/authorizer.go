package database

import (
	"fmt"
	"strings"
	"sync"

	"modernc.org/sqlite"
)

// The authorizer is SQLite's own hook (sqlite3_set_authorizer, exposed by
// modernc.org/sqlite as AuthorizerRegisterer): SQLite calls it for every
// operation while it compiles a statement, including the statements inside
// views, triggers and CTEs, so a denial does not depend on how the text is
// spelt. A denied operation fails the prepare with SQLITE_AUTH: nothing
// runs. It is installed on every connection the pool opens (a connection
// hook on a private sqlite.Driver, so no other package's connections are
// affected) and replaced per call with one that also records what it
// denied, for the refusal message.

// denial is one operation the authorizer refused. SQLite abandons the
// statement at the first denial, so a call has at most one; it can be an
// internal step of the statement ("DROP TABLE users" first deletes from
// sqlite_master).
type denial struct {
	check  string // "read-only" or "statement"
	reason string
}

// recorder keeps the denial of one call.
type recorder struct {
	mu    sync.Mutex
	first *denial
}

func (r *recorder) record(d denial) {
	r.mu.Lock()
	if r.first == nil {
		r.first = &d
	}
	r.mu.Unlock()
}

func (r *recorder) denied() *denial {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// authorizer returns the policy of a connection; rec may be nil.
func authorizer(readOnly bool, rec *recorder) sqlite.AuthorizerFn {
	return func(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
		d, ok := decide(readOnly, action, arg1, arg2)
		if ok {
			return sqlite.AuthorizerOK
		}
		if rec != nil {
			rec.record(d)
		}
		return sqlite.AuthorizerDeny
	}
}

// objectPragmas describe a schema object named by their argument.
var objectPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true,
	"index_info": true, "index_xinfo": true, "foreign_key_list": true,
}

// readPragmas may be read (never set: with an argument they are denied).
// database_list is not among them: it shows host paths.
var readPragmas = map[string]bool{
	"user_version": true, "application_id": true, "schema_version": true, "data_version": true,
	"page_count": true, "page_size": true, "freelist_count": true, "encoding": true,
	"foreign_keys": true, "collation_list": true, "function_list": true, "pragma_list": true,
	"module_list": true, "compile_options": true, "query_only": true,
}

// deniedFunctions reach outside the database or into the engine.
var deniedFunctions = map[string]bool{
	"load_extension": true, "fts3_tokenizer": true, "readfile": true, "writefile": true,
	"edit": true, "zipfile": true,
}

// writeActions change the database; refused when it is read-only. The
// object is the first authorizer argument, except for ALTER TABLE (the
// second).
var writeActions = map[sqlite.AuthorizerActionCode]string{
	sqlite.AuthInsert:            "INSERT into",
	sqlite.AuthUpdate:            "UPDATE of",
	sqlite.AuthDelete:            "DELETE from",
	sqlite.AuthCreateTable:       "CREATE TABLE",
	sqlite.AuthCreateIndex:       "CREATE INDEX",
	sqlite.AuthCreateView:        "CREATE VIEW",
	sqlite.AuthCreateTrigger:     "CREATE TRIGGER",
	sqlite.AuthCreateTempTable:   "CREATE TEMP TABLE",
	sqlite.AuthCreateTempIndex:   "CREATE TEMP INDEX",
	sqlite.AuthCreateTempView:    "CREATE TEMP VIEW",
	sqlite.AuthCreateTempTrigger: "CREATE TEMP TRIGGER",
	sqlite.AuthDropTable:         "DROP TABLE",
	sqlite.AuthDropIndex:         "DROP INDEX",
	sqlite.AuthDropView:          "DROP VIEW",
	sqlite.AuthDropTrigger:       "DROP TRIGGER",
	sqlite.AuthDropTempTable:     "DROP TEMP TABLE",
	sqlite.AuthDropTempIndex:     "DROP TEMP INDEX",
	sqlite.AuthDropTempView:      "DROP TEMP VIEW",
	sqlite.AuthDropTempTrigger:   "DROP TEMP TRIGGER",
	sqlite.AuthAlterTable:        "ALTER TABLE",
	sqlite.AuthReindex:           "REINDEX",
	sqlite.AuthAnalyze:           "ANALYZE",
}

// decide is the policy: an allow-list, so an action code added in a later
// SQLite is denied until someone decides otherwise.
func decide(readOnly bool, action sqlite.AuthorizerActionCode, arg1, arg2 string) (denial, bool) {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthRecursive:
		return denial{}, true
	case sqlite.AuthFunction:
		if deniedFunctions[strings.ToLower(arg2)] {
			return denial{check: "statement", reason: fmt.Sprintf("the function %s() is not allowed", strings.ToLower(arg2))}, false
		}
		return denial{}, true
	case sqlite.AuthPragma:
		return decidePragma(readOnly, strings.ToLower(arg1), arg2)
	case sqlite.AuthTransaction, sqlite.AuthSavepoint:
		return denial{check: "statement", reason: "transaction statements are not allowed: each query runs on its own"}, false
	case sqlite.AuthAttach, sqlite.AuthDetach:
		// VACUUM INTO attaches its target file first, so it lands here too.
		return denial{check: "statement", reason: "ATTACH, DETACH and VACUUM are not allowed: a query may only use its own database"}, false
	case sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		return denial{check: "statement", reason: "creating or dropping virtual tables is not allowed"}, false
	}
	if verb, ok := writeActions[action]; ok {
		if readOnly {
			object := arg1
			if action == sqlite.AuthAlterTable {
				object = arg2
			}
			return denial{check: "read-only", reason: strings.TrimSpace(verb+" "+object) + " is a write, and the database is read-only"}, false
		}
		return denial{}, true
	}
	return denial{check: "statement", reason: fmt.Sprintf("operation %d is not allowed", int(action))}, false
}

func decidePragma(readOnly bool, name, arg string) (denial, bool) {
	switch {
	case objectPragmas[name]:
		return denial{}, true
	case readPragmas[name] && arg == "":
		return denial{}, true
	case arg != "" && readOnly:
		return denial{check: "read-only", reason: fmt.Sprintf("PRAGMA %s = %s sets a value, and the database is read-only", name, arg)}, false
	case arg != "":
		return denial{check: "statement", reason: fmt.Sprintf("PRAGMA %s cannot be set through this tool", name)}, false
	default:
		return denial{check: "statement", reason: fmt.Sprintf("PRAGMA %s is not allowed", name)}, false
	}
}
