package mcpserver

import (
	"io"
	"log"
)

func newLogger(w io.Writer) *log.Logger { return log.New(w, "agentmesh: mcp: ", 0) }
