package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentmesh/agentmesh/pkg/ui"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"agentmesh": func() { os.Exit(run(os.Args[1:], ui.System())) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/*.txtar against the
// real binary (see testscript). Each script gets its own HOME and
// XDG_CONFIG_HOME so nothing touches the real user's files.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, ".home")
			env.Setenv("HOME", home)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("NO_COLOR", "1")
			return os.MkdirAll(home, 0o700)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"jsonfield": cmdJSONField,
			"filemode":  cmdFileMode,
		},
	})
}

// cmdJSONField checks a value in a JSON document:
//
//	jsonfield FILE PATH WANT
//
// FILE is a file or "stdout"; PATH is dot-separated (numbers index arrays);
// WANT is compared with the value's JSON text without quotes for strings.
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonfield FILE PATH WANT")
	}
	var data string
	if args[0] == "stdout" {
		data = ts.ReadFile("stdout")
	} else {
		data = ts.ReadFile(args[0])
	}
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		ts.Fatalf("%s is not JSON: %v", args[0], err)
	}
	for _, key := range strings.Split(args[1], ".") {
		switch node := v.(type) {
		case map[string]any:
			v = node[key]
		case []any:
			var i int
			if _, err := fmt.Sscanf(key, "%d", &i); err != nil || i >= len(node) {
				ts.Fatalf("%s: bad index %q", args[1], key)
			}
			v = node[i]
		default:
			ts.Fatalf("%s: %q is not inside an object or array", args[1], key)
		}
	}
	got := fmt.Sprint(v)
	if b, err := json.Marshal(v); err == nil && !isString(v) {
		got = string(b)
	}
	if (got == args[2]) == neg {
		ts.Fatalf("jsonfield %s = %s, want %s%s", args[1], got, map[bool]string{true: "not ", false: ""}[neg], args[2])
	}
}

func isString(v any) bool { _, ok := v.(string); return ok }

// cmdFileMode checks a file's permission bits: filemode FILE 0600
func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fmt.Sprintf("%04o", st.Mode().Perm())
	if (got == args[1]) == neg {
		ts.Fatalf("%s has mode %s, want %s", args[0], got, args[1])
	}
}
