package code

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The parent and the child speak one JSON object each way: a request on
// the child's stdin, a response on its stdout. Nothing else is written to
// stdout; the Go runtime's own fatal errors go to stderr.

// protocolVersion changes whenever request or response change shape; a
// child of another version refuses to run.
const protocolVersion = 1

// request is what the parent sends.
type request struct {
	Version        int    `json:"v"`
	Language       string `json:"language"`
	Code           string `json:"code"`
	MaxSteps       uint64 `json:"max_steps"`
	MaxOutputBytes int64  `json:"max_output_bytes"`
	CPUSeconds     int    `json:"cpu_seconds"`
	MaxOpenFiles   int    `json:"max_open_files"`
	MaxMemoryMB    int    `json:"max_memory_mb"`
}

// Response kinds.
const (
	kindOK       = "ok"       // ran to completion
	kindError    = "error"    // Starlark syntax or runtime error
	kindSteps    = "steps"    // step budget exhausted
	kindOutput   = "output"   // print output or result over the cap
	kindCPU      = "cpu"      // RLIMIT_CPU soft limit (SIGXCPU)
	kindMemory   = "memory"   // an allocation the interpreter or runtime refused
	kindInternal = "internal" // the sandbox itself failed
)

// response is what the child sends back.
type response struct {
	Version int    `json:"v"`
	Kind    string `json:"kind"`
	Output  string `json:"output"`
	// Result is the JSON encoding of the global "result", if set.
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Steps  uint64          `json:"steps"`
	// Landlock says whether the filesystem restriction is in force.
	Landlock string `json:"landlock"`
	// Limits lists the OS limits the child set on itself.
	Limits []string `json:"limits,omitempty"`
}

// Bounds on the request itself.
const (
	maxCodeBytes    = 256 << 10
	maxRequestBytes = 2 * maxCodeBytes // JSON escaping headroom
)

// readRequest decodes and checks a request; every limit must be positive,
// so a child never runs code without them.
func readRequest(r io.Reader) (request, error) {
	var req request
	dec := json.NewDecoder(io.LimitReader(r, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return request{}, fmt.Errorf("decoding the request: %w", err)
	}
	return req, req.check()
}

func (req request) check() error {
	switch {
	case req.Version != protocolVersion:
		return fmt.Errorf("protocol version %d, want %d (parent and child are different builds)", req.Version, protocolVersion)
	case req.Language != "starlark":
		return fmt.Errorf("language %q is not supported", req.Language)
	case len(req.Code) > maxCodeBytes:
		return fmt.Errorf("code is longer than %d bytes", maxCodeBytes)
	case req.MaxSteps == 0, req.MaxOutputBytes <= 0, req.CPUSeconds <= 0, req.MaxOpenFiles <= 0, req.MaxMemoryMB <= 0:
		return errors.New("every limit must be set")
	}
	return nil
}
