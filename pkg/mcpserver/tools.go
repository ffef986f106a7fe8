package mcpserver

import (
	"fmt"
	"path/filepath"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/tools"

	"github.com/agentmesh/agentmesh/pkg/tools/api"
	"github.com/agentmesh/agentmesh/pkg/tools/code"
	"github.com/agentmesh/agentmesh/pkg/tools/database"
	"github.com/agentmesh/agentmesh/pkg/tools/filesystem"
	"github.com/agentmesh/agentmesh/pkg/tools/sampledata"
)

// buildTools constructs the enabled built-in tools from the configuration.
// The zero-config sample data (files and users.db under the state
// directory) is written first when the configuration mounts it.
func (rt *Runtime) buildTools() error {
	ts, closers, err := BuildTools(rt.Cfg, rt.opts)
	rt.Tools, rt.closers = append(rt.Tools, ts...), append(rt.closers, closers...)
	return err
}

// BuildTools constructs the built-in tools the configuration enables (none
// when upstreams are governed, unless tools.with_upstreams), writing the
// zero-config sample data first when the configuration mounts it. Call
// the closers when done.
func BuildTools(cfg *config.Config, opts Options) (ts []tools.Tool, closers []func() error, err error) {
	if len(cfg.Upstreams) > 0 && !cfg.Tools.WithUpstreams {
		return nil, nil, nil // a governed server is served alone unless asked
	}
	rt := &Runtime{Cfg: cfg, opts: opts}
	defer func() { ts, closers = rt.Tools, rt.closers }()
	return nil, nil, rt.buildBuiltins()
}

func (rt *Runtime) buildBuiltins() error {
	cfg := rt.Cfg
	sample := cfg.ResolvePath("${state_dir}/data")
	usesSample := false
	for _, r := range cfg.Tools.Filesystem.Roots {
		usesSample = usesSample || cfg.ResolvePath(r.Path) == sample
	}
	for _, d := range cfg.Tools.Database.Databases {
		usesSample = usesSample || cfg.ResolvePath(d.Path) == filepath.Join(sample, "users.db")
	}
	if usesSample {
		if err := sampledata.Ensure(sample); err != nil {
			return fmt.Errorf("writing the sample data: %w", err)
		}
	}
	if cfg.Tools.Filesystem.Enabled && len(cfg.Tools.Filesystem.Roots) > 0 {
		fs, err := filesystem.New(filesystem.FromConfig(cfg))
		if err != nil {
			return fmt.Errorf("tools.filesystem: %w", err)
		}
		rt.Tools = append(rt.Tools, fs.Tools()...)
		rt.closers = append(rt.closers, fs.Close)
	}
	if c := cfg.Tools.Database; c.Enabled && len(c.Databases) > 0 {
		db, err := database.New(database.FromConfig(cfg))
		if err != nil {
			return fmt.Errorf("tools.database: %w", err)
		}
		rt.Tools = append(rt.Tools, db)
		rt.closers = append(rt.closers, db.Close)
	}
	if c := cfg.Tools.API; c.Enabled && len(c.Endpoints) > 0 {
		o := api.Options{Timeout: c.Timeout.D(), MaxResponseBytes: c.MaxResponseBytes, MaxRedirects: c.MaxRedirects}
		for _, e := range c.Endpoints {
			o.Endpoints = append(o.Endpoints, api.Endpoint{URL: e.URL, Methods: e.Methods, AllowPrivate: e.AllowPrivate, Headers: e.Headers})
		}
		t, err := api.New(o)
		if err != nil {
			return fmt.Errorf("tools.api: %w", err)
		}
		rt.Tools = append(rt.Tools, t)
	}
	if c := cfg.Tools.Code; c.Enabled {
		t, err := code.New(code.Options{
			Languages: c.Languages, MaxMemoryMB: c.MaxMemoryMB, CPUSeconds: c.CPUSeconds, Timeout: c.Timeout.D(),
			MaxSteps: c.MaxSteps, MaxOutputBytes: c.MaxOutputBytes, MaxOpenFiles: c.MaxOpenFiles,
			Exe: rt.opts.SandboxExe, Args: rt.opts.SandboxArgs,
		})
		if err != nil {
			return fmt.Errorf("tools.code: %w", err)
		}
		rt.Tools = append(rt.Tools, t)
	}
	return nil
}
