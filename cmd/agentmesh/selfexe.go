package main

import (
	"os"
	"os/exec"
	"path/filepath"
)

// selfExe is the path to run this agentmesh again (serve's code sandbox,
// demo's serve). It is argv[0] found on PATH when that names an agentmesh
// binary or link to one, so a link's name is kept (the test harness
// dispatches on it), else the resolved executable.
func selfExe() (string, error) {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	return os.Executable()
}
