package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// FileName is the configuration file looked up in the working directory and
// in the user's configuration directory.
const FileName = "agentmesh.yaml"

// Source records where the configuration and the state directory came from,
// so `status` can say and errors can point at the right place.
type Source struct {
	// File is the absolute path of the configuration file, or "" when the
	// embedded defaults are in use.
	File string
	// FileFrom says how File was chosen: "--config", "AGENTMESH_CONFIG",
	// "working directory", "user config directory" or "embedded defaults".
	FileFrom string
	// StateDir is the absolute state directory.
	StateDir string
	// StateDirFrom says how StateDir was chosen.
	StateDirFrom string
	// Database is the PostgreSQL state database URL, or "" for SQLite in
	// the state directory; DatabaseFrom says where it came from
	// ("AGENTMESH_DATABASE_URL" or "state.database in FILE").
	Database, DatabaseFrom string
	// UserConfigDir is $XDG_CONFIG_HOME/agentmesh (default
	// ~/.config/agentmesh): where the audit witness lives, outside the state
	// directory. Empty when no home directory is known.
	UserConfigDir string
}

// Dir is the directory relative paths in the configuration are resolved
// against: the configuration file's directory, or the state directory for
// the embedded defaults.
func (s Source) Dir() string {
	if s.File == "" {
		return s.StateDir
	}
	return filepath.Dir(s.File)
}

// Env is what resolution depends on, injected so tests need no real home.
type Env struct {
	// ConfigFlag and StateDirFlag are the values of --config and
	// --state-dir ("" when not given).
	ConfigFlag   string
	StateDirFlag string
	Getenv       func(string) string
	// Cwd is the working directory; Home the user's home directory.
	Cwd  string
	Home string
}

// OSEnv returns the process's environment with the given flag values.
func OSEnv(configFlag, stateDirFlag string) (Env, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return Env{}, fmt.Errorf("reading the working directory: %w", err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "" // resolution reports it only if it needs it
	}
	return Env{ConfigFlag: configFlag, StateDirFlag: stateDirFlag, Getenv: os.Getenv, Cwd: cwd, Home: home}, nil
}

// UserConfigDir is $XDG_CONFIG_HOME/agentmesh, defaulting to
// ~/.config/agentmesh on every OS (DESIGN.md: the witness lives there too).
func (e Env) UserConfigDir() (string, error) {
	if x := e.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "agentmesh"), nil
	}
	if e.Home == "" {
		return "", errors.New("cannot find the home directory: set HOME or XDG_CONFIG_HOME")
	}
	return filepath.Join(e.Home, ".config", "agentmesh"), nil
}

func (e Env) abs(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = filepath.Join(e.Home, p[1:])
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(e.Cwd, p)
}

// Load finds the configuration file, decodes and validates it over the
// embedded defaults, and resolves the state directory.
//
// File lookup: --config > AGENTMESH_CONFIG > ./agentmesh.yaml >
// $XDG_CONFIG_HOME/agentmesh/agentmesh.yaml > embedded defaults.
// State directory: --state-dir > AGENTMESH_STATE_DIR > state_dir in the file
// (relative to the file's directory) > .agentmesh beside the file >
// ~/.agentmesh. The working directory alone never decides where state goes:
// Claude Desktop may start the server in /.
func Load(env Env) (*Config, error) {
	src, err := findFile(env)
	if err != nil {
		return nil, err
	}
	cfg := Default()
	if src.File != "" {
		data, err := os.ReadFile(src.File)
		if err != nil {
			return nil, fmt.Errorf("reading configuration %s (from %s): %w", src.File, src.FileFrom, err)
		}
		parsed, err := Parse(src.File, data)
		if err != nil {
			return nil, err
		}
		cfg = *parsed
	}
	if err := resolveStateDir(env, &cfg, &src); err != nil {
		return nil, err
	}
	if err := resolveDatabase(env, &cfg, &src); err != nil {
		return nil, err
	}
	src.UserConfigDir, _ = env.UserConfigDir()
	cfg.Source = src
	return &cfg, nil
}

func findFile(env Env) (Source, error) {
	if env.ConfigFlag != "" {
		return mustExist(env.abs(env.ConfigFlag), "--config")
	}
	if p := env.Getenv("AGENTMESH_CONFIG"); p != "" {
		return mustExist(env.abs(p), "AGENTMESH_CONFIG")
	}
	if p := filepath.Join(env.Cwd, FileName); fileExists(p) {
		return Source{File: p, FileFrom: "working directory"}, nil
	}
	if dir, err := env.UserConfigDir(); err == nil {
		if p := filepath.Join(dir, FileName); fileExists(p) {
			return Source{File: p, FileFrom: "user config directory"}, nil
		}
	}
	return Source{FileFrom: "embedded defaults"}, nil
}

func mustExist(p, from string) (Source, error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Source{}, fmt.Errorf("configuration file %s (from %s) does not exist; create one with `agentmesh init`", p, from)
		}
		return Source{}, fmt.Errorf("configuration file %s (from %s): %w", p, from, err)
	}
	if st.IsDir() {
		return Source{}, fmt.Errorf("configuration file %s (from %s) is a directory; name the agentmesh.yaml inside it", p, from)
	}
	return Source{File: p, FileFrom: from}, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// resolveDatabase picks the state database: AGENTMESH_DATABASE_URL, else
// state.database, else none (SQLite in the state directory).
func resolveDatabase(env Env, cfg *Config, src *Source) error {
	switch {
	case env.Getenv("AGENTMESH_DATABASE_URL") != "":
		src.Database, src.DatabaseFrom = env.Getenv("AGENTMESH_DATABASE_URL"), "AGENTMESH_DATABASE_URL"
		if err := CheckDatabaseURL(src.Database); err != nil {
			return fmt.Errorf("AGENTMESH_DATABASE_URL: %w", err)
		}
	case cfg.State.Database != "":
		src.Database, src.DatabaseFrom = cfg.State.Database, "state.database in "+src.File
	}
	return nil
}

// CheckDatabaseURL accepts a PostgreSQL URL (postgres:// or postgresql://)
// with a host; the error never repeats the URL, which may hold a password.
func CheckDatabaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL; write postgres://USER@HOST:PORT/DATABASE")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("scheme %q is not supported; only PostgreSQL (postgres://USER@HOST:PORT/DATABASE) can hold shared state (leave it empty for SQLite in the state directory)", u.Scheme)
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return errors.New("no host; write postgres://USER@HOST:PORT/DATABASE")
	}
	return nil
}

func resolveStateDir(env Env, cfg *Config, src *Source) error {
	switch {
	case env.StateDirFlag != "":
		src.StateDir, src.StateDirFrom = env.abs(env.StateDirFlag), "--state-dir"
	case env.Getenv("AGENTMESH_STATE_DIR") != "":
		src.StateDir, src.StateDirFrom = env.abs(env.Getenv("AGENTMESH_STATE_DIR")), "AGENTMESH_STATE_DIR"
	case cfg.StateDir != "" && src.File != "":
		p := cfg.StateDir
		if strings.HasPrefix(p, "~/") {
			p = filepath.Join(env.Home, p[2:])
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(src.File), p)
		}
		src.StateDir, src.StateDirFrom = filepath.Clean(p), "state_dir in "+src.File
	case src.File != "":
		src.StateDir, src.StateDirFrom = filepath.Join(filepath.Dir(src.File), ".agentmesh"), "beside "+src.File
	default:
		if env.Home == "" {
			return errors.New("cannot choose a state directory: no --state-dir, no AGENTMESH_STATE_DIR, no configuration file, and no home directory")
		}
		src.StateDir, src.StateDirFrom = filepath.Join(env.Home, ".agentmesh"), "default (~/.agentmesh)"
	}
	return nil
}

// ResolvePath turns a path from the configuration into an absolute host
// path: "${state_dir}" expands to the state directory and relative paths are
// taken from the configuration file's directory.
func (c *Config) ResolvePath(p string) string {
	p = strings.ReplaceAll(p, "${state_dir}", c.Source.StateDir)
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Source.Dir(), p)
}
