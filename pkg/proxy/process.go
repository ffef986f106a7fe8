package proxy

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// process is one run of a stdio upstream: its pipes and its exit.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	exited chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, valid once exited is closed
	stderr *prefixWriter
}

// startProcess starts u.Command with its args, environment and working
// directory. The upstream's stderr goes to stderr, each line prefixed with
// the upstream's name. The process gets its own process group so that a
// launcher (npx, uvx) and the server it starts are stopped together.
func startProcess(u config.Upstream, stderr io.Writer) (*process, error) {
	cmd := exec.Command(u.Command, u.Args...)
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(u.Env))
	for k := range u.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Secret references were resolved when the server started
		// (config.ResolveSecrets); the value is used as it is.
		cmd.Env = append(cmd.Env, k+"="+u.Env[k])
	}
	cmd.Dir = u.Cwd
	pw := &prefixWriter{w: stderr, prefix: "agentmesh: upstream " + u.Name + ": "}
	cmd.Stderr = pw
	setProcessGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", u.Command, err)
	}
	p := &process{cmd: cmd, stdin: stdin, stdout: stdout, exited: make(chan struct{}), stderr: pw}
	go func() {
		p.err = cmd.Wait()
		pw.flush()
		close(p.exited)
	}()
	return p, nil
}

// exitStatus describes how the process ended; call after exited is closed.
func (p *process) exitStatus() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// stop ends the process the way MCP's stdio transport asks (2025-11-25,
// "Lifecycle: Shutdown"): close its stdin and wait, then SIGTERM, then
// SIGKILL. Closing stdin first lets a server exit cleanly instead of dying
// on a broken pipe.
func (p *process) stop(grace time.Duration) {
	p.stdin.Close()
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	terminate(p.cmd)
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	kill(p.cmd)
	<-p.exited
}

// prefixWriter writes whole lines to w, each prefixed; a partial last line
// waits for its newline (or flush).
type prefixWriter struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
}

const maxStderrLine = 8 << 10

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			for len(p.partial) > maxStderrLine {
				p.emit(p.partial[:maxStderrLine])
				p.partial = append(p.partial[:0], p.partial[maxStderrLine:]...)
			}
			break
		}
		p.emit(append(p.partial, b[:i]...))
		p.partial = p.partial[:0]
		b = b[i+1:]
	}
	return n, nil
}

func (p *prefixWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	out := make([]byte, 0, len(p.prefix)+len(line)+1)
	out = append(append(append(out, p.prefix...), line...), '\n')
	p.w.Write(out)
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.partial) > 0 {
		p.emit(p.partial)
		p.partial = p.partial[:0]
	}
}
