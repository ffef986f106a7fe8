package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/ui"
)

// Set by goreleaser: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = ""
	commit  = ""
	date    = ""
)

type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// currentBuild reports what ldflags set, falling back to what the Go
// toolchain recorded (module version under `go install`, VCS revision in a
// checkout) so `go run` prints something true rather than empty.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Commit == "":
				b.Commit = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && b.Commit != "" && b.Commit != "unknown":
				b.Commit += "-dirty"
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

func versionString() string {
	b := currentBuild()
	return fmt.Sprintf("agentmesh %s (commit %s, %s, %s)", b.Version, b.Commit, b.GoVersion, b.Platform)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version",
		Example: "  agentmesh version\n  agentmesh version --output json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f, err := g.format()
			if err != nil {
				return err
			}
			if f == ui.JSON {
				return ui.WriteJSON(g.io.Out, currentBuild())
			}
			fmt.Fprintln(g.io.Out, versionString())
			return nil
		},
	}
}
