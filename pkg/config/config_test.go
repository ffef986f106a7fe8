package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

func TestDefaultsValidate(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("embedded defaults do not validate: %v", err)
	}
}

func TestExampleParsesToDefaults(t *testing.T) {
	cfg, err := Parse("agentmesh.yaml", SeedExample())
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Agent = Agent{Name: "mcp-tool-server", Sponsor: "devops@company.com"}
	want.StateDir = ".agentmesh"
	want.Policies.Paths = []string{"policies/"}
	want.Trust.KeepWhenRevoked = []string{}
	want.Upstreams = []Upstream{}
	want.Audit.Witnesses = []AuditWitness{}
	want.Auth.Issuers = []AuthIssuer{}
	want.Auth.Claims.Extra = []string{}
	want.Auth.ScopeMap = map[string][]AuthGrant{}
	want.Auth.RequiredScopes = []string{}
	want.HTTP.AllowedOrigins = []string{}
	want.HTTP.ClientCerts = map[string]string{}
	want.Tools.API.Endpoints[0].Headers = map[string]string{}
	want.Compliance = []string{}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("example differs from the defaults:\n got %+v\nwant %+v", *cfg, want)
	}
}

// TestExampleCoversSchema fails when a key is added to the schema but not
// documented in the example file.
func TestExampleCoversSchema(t *testing.T) {
	var cfg Config
	pos, err := yamlpos.DecodePositions("example.yaml", SeedExample(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range schemaKeys(reflect.TypeFor[Config](), "") {
		if _, ok := pos[key]; ok {
			continue
		}
		// Keys of list items that the example leaves empty (upstreams)
		// are documented in comments.
		leaf := key[strings.LastIndex(key, ".")+1:]
		if (strings.HasPrefix(key, "upstreams[0].") || strings.HasPrefix(key, "audit.witnesses[0].")) && strings.Contains(exampleTemplate, "#    "+leaf+":") ||
			strings.HasPrefix(key, "auth.issuers[0].") && regexp.MustCompile(`(?m)^#[ -]+`+leaf+`:`).MatchString(exampleTemplate) ||
			strings.Contains(exampleTemplate, "#  - "+leaf+":") {
			continue
		}
		t.Errorf("schema key %s is not documented in example.yaml", key)
	}
}

func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[Duration]() {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		keys = append(keys, key)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			keys = append(keys, schemaKeys(ft.Elem(), key+"[0]")...)
		} else {
			keys = append(keys, schemaKeys(ft, key)...)
		}
	}
	return keys
}

func TestRepositoryExampleIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../agentmesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(SeedExample()) {
		t.Fatal("agentmesh.yaml at the repository root differs from pkg/config/example.yaml: run `go generate ./pkg/config`")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each FILE:LINE:COL: message fragment
	}{
		{"unknown top-level key", "agent:\n  name: x\nsate_dir: /tmp\n", []string{`c.yaml:3:1: unknown key "sate_dir"`}},
		{"unknown nested key", "tools:\n  filesystem:\n    rots: []\n", []string{`c.yaml:3:5: unknown key "rots" in tools.filesystem`}},
		{"wrong type int", "trust:\n  initial: high\n", []string{`c.yaml:2:12: trust.initial: expected an integer, got the string "high"`}},
		{"wrong type bool", "governance:\n  shadow_mode: maybe\n", []string{`c.yaml:2:16: governance.shadow_mode: expected true or false`}},
		{"list expected", "scopes: filesystem\n", []string{`c.yaml:1:9: scopes must be a list`}},
		{"bad duration", "identity:\n  credential_ttl: 15\n", []string{`c.yaml:2:19: identity.credential_ttl: expected a duration`}},
		{"bad sponsor", "agent:\n  sponsor: not-an-email\n", []string{`c.yaml:2:12: sponsor "not-an-email" is not an e-mail address`}},
		{"bad name", "agent:\n  name: has space\n", []string{`c.yaml:2:9: name "has space"`}},
		{"bad scope resource", "scopes:\n  - resources: [\"disk:/x\"]\n    actions: [read]\n    ttl_minutes: 15\n", []string{`c.yaml:2:17: resource "disk:/x": unknown kind`}},
		{"bad action", "scopes:\n  - resources: [\"filesystem:/x\"]\n    actions: [delete]\n    ttl_minutes: 15\n", []string{`c.yaml:3:15: unknown action "delete"`}},
		{"bad access", "tools:\n  filesystem:\n    roots:\n      - path: d\n        mount: /d\n        access: rw\n", []string{`c.yaml:6:17: access must be "read" or "read-write", got "rw" (read and write is spelled "read-write")`}},
		{"read-only spelled out", "tools:\n  filesystem:\n    roots:\n      - path: d\n        mount: /d\n        access: read-only\n", []string{`c.yaml:6:17: access must be "read" or "read-write", got "read-only" (read-only is spelled "read")`}},
		{"duplicate key", "agent:\n  name: a\n  name: b\n", []string{`c.yaml:3:3: duplicate key "name"`}},
		{"upstream without command or url", "upstreams:\n  - name: x\n", []string{`c.yaml:2:5: upstream "x" needs either command`}},
		{"several errors at once", "agent:\n  nme: x\ntrust:\n  initial: many\n", []string{`c.yaml:2:3: unknown key "nme"`, `c.yaml:4:12: trust.initial: expected an integer`}},
		{"validation errors together", "trust:\n  initial: 2000\n  revoke_below: -1\n", []string{`c.yaml:2:12: must be between 0 and 1000, got 2000`, `c.yaml:3:17: must be between 0 and 1000, got -1`}},
		{"syntax error", "agent:\n  name: [unclosed\n", []string{`c.yaml:`, `YAML syntax error`}},
		{"two documents", "agent: {}\n---\nagent: {}\n", []string{`only one YAML document`}},
	}
	for _, tt := range tests {
		_, err := Parse("c.yaml", []byte(tt.yaml))
		if err == nil {
			t.Errorf("%s: parsed without error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n%v\nwant it to contain %q", tt.name, err, w)
			}
		}
	}
}

func TestParseKeepsDefaultsForMissingKeys(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("agent:\n  name: other\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.Name != "other" || cfg.Agent.Sponsor != PlaceholderSponsor || cfg.Trust.Initial != 800 || !cfg.Tools.Filesystem.Enabled {
		t.Errorf("defaults lost: %+v", cfg)
	}
}

func TestLoadResolution(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	cwd := filepath.Join(root, "work")
	proj := filepath.Join(root, "proj")
	xdg := filepath.Join(root, "xdg")
	for _, d := range []string{home, cwd, proj, filepath.Join(xdg, "agentmesh")} {
		os.MkdirAll(d, 0o755)
	}
	write := func(p, body string) {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(proj, FileName), "agent: {name: proj}\n")
	write(filepath.Join(xdg, "agentmesh", FileName), "agent: {name: userwide}\nstate_dir: st\n")

	env := func(vars map[string]string, configFlag, stateFlag string) Env {
		return Env{ConfigFlag: configFlag, StateDirFlag: stateFlag, Cwd: cwd, Home: home, Getenv: func(k string) string { return vars[k] }}
	}
	tests := []struct {
		name              string
		env               Env
		wantName          string
		wantFrom          string
		wantState         string
		wantStateFromPart string
	}{
		{"embedded defaults", env(nil, "", ""), "mcp-tool-server", "embedded defaults", filepath.Join(home, ".agentmesh"), "default"},
		{"user config dir", env(map[string]string{"XDG_CONFIG_HOME": xdg}, "", ""), "userwide", "user config directory", filepath.Join(xdg, "agentmesh", "st"), "state_dir in"},
		{"--config beats env", env(map[string]string{"AGENTMESH_CONFIG": "/nope.yaml"}, filepath.Join(proj, FileName), ""), "proj", "--config", filepath.Join(proj, ".agentmesh"), "beside"},
		{"AGENTMESH_CONFIG", env(map[string]string{"AGENTMESH_CONFIG": filepath.Join(proj, FileName)}, "", ""), "proj", "AGENTMESH_CONFIG", filepath.Join(proj, ".agentmesh"), "beside"},
		{"--state-dir beats all", env(map[string]string{"AGENTMESH_STATE_DIR": "/env-state"}, filepath.Join(proj, FileName), "rel"), "proj", "--config", filepath.Join(cwd, "rel"), "--state-dir"},
		{"AGENTMESH_STATE_DIR", env(map[string]string{"AGENTMESH_STATE_DIR": "/env-state"}, filepath.Join(proj, FileName), ""), "proj", "--config", "/env-state", "AGENTMESH_STATE_DIR"},
	}
	for _, tt := range tests {
		cfg, err := Load(tt.env)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if cfg.Agent.Name != tt.wantName || cfg.Source.FileFrom != tt.wantFrom || cfg.Source.StateDir != tt.wantState || !strings.Contains(cfg.Source.StateDirFrom, tt.wantStateFromPart) {
			t.Errorf("%s: got name %q from %q, state %q (%s)", tt.name, cfg.Agent.Name, cfg.Source.FileFrom, cfg.Source.StateDir, cfg.Source.StateDirFrom)
		}
	}
	// ./agentmesh.yaml in the working directory comes before the user's.
	write(filepath.Join(cwd, FileName), "agent: {name: here}\n")
	cfg, err := Load(env(map[string]string{"XDG_CONFIG_HOME": xdg}, "", ""))
	if err != nil || cfg.Agent.Name != "here" || cfg.Source.StateDir != filepath.Join(cwd, ".agentmesh") {
		t.Errorf("working directory file: %+v, %v", cfg, err)
	}
	if _, err := Load(env(nil, filepath.Join(root, "missing.yaml"), "")); err == nil || !strings.Contains(err.Error(), "agentmesh init") {
		t.Errorf("missing --config file: %v", err)
	}
}

func TestResolvePath(t *testing.T) {
	cfg := Default()
	cfg.Source = Source{File: "/etc/am/agentmesh.yaml", StateDir: "/var/lib/am"}
	for in, want := range map[string]string{
		"${state_dir}/data": "/var/lib/am/data",
		"data":              "/etc/am/data",
		"/abs/x":            "/abs/x",
		"../up":             "/etc/up",
	} {
		if got := cfg.ResolvePath(in); got != want {
			t.Errorf("ResolvePath(%q) = %q, want %q", in, got, want)
		}
	}
	cfg.Source.File = ""
	if got := cfg.ResolvePath("data"); got != "/var/lib/am/data" {
		t.Errorf("embedded defaults resolve against the state dir: got %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(SeedExample())
	f.Add([]byte("agent: {name: x}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("scopes:\n  - resources: [1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err != nil {
			for _, e := range yamlpos.Errors(err) {
				if e.File != "f.yaml" {
					t.Fatalf("error without the file name: %v", e)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a configuration that Validate rejects: %v", err)
		}
	})
}
