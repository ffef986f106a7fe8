// Command startup measures how fast `agentmesh serve` (stdio) becomes
// usable and how much memory it holds. Each run spawns
//
//	BIN serve --config CFG --quiet
//
// writes an initialize request on its stdin at once, and takes the wall
// time from just before the process is started (fork/exec included) to the
// initialize response line on stdout. It then reads VmRSS from
// /proc/PID/status, sends notifications/initialized and one filesystem_read
// call (its output and params pass the secret detectors, so they are
// loaded), and reads VmRSS again.
//
// Cold runs each get a fresh directory (a copy of CFG beside a new state
// directory and home), so the identity is created and the first audit
// entries written; warm runs reuse CFG's own directory after one unmeasured
// priming start. HOME and XDG_CONFIG_HOME are "home" beside the config.
//
//	go run ./scripts/bench/serve/startup -bin BIN -config CFG -expect FILE [-n 30] [-cold 5] \
//	    [-plain PLAINBIN -data DIR]
//
// With -plain, plainserver (the ungoverned mcp-go baseline) is started the
// same way, interleaved with the warm runs, to show the floor that mcp-go
// and the Go runtime set.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/scripts/bench/serve/internal/benchutil"
)

type options struct {
	bin, config, path, expect, work string
	plain, data                     string
	n, cold                         int
	verbose                         bool
}

type sample struct {
	init, call   time.Duration // start → initialize response; call request → response
	rssInit, rss int64         // KiB after initialize, after the first call
	hwm          int64         // peak RSS (VmHWM) after the first call
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "agentmesh binary")
	flag.StringVar(&o.config, "config", "", "agentmesh.yaml (its directory holds the warm state and home)")
	flag.StringVar(&o.path, "path", "/data/bench.txt", "virtual path for the filesystem_read call")
	flag.StringVar(&o.expect, "expect", "", "host file whose content the call must return unchanged")
	flag.StringVar(&o.work, "work", "", "directory for the cold-start copies (default: a temporary directory)")
	flag.IntVar(&o.n, "n", 30, "warm runs")
	flag.IntVar(&o.cold, "cold", 5, "cold (first-start) runs, each in a fresh state directory")
	flag.StringVar(&o.plain, "plain", "", "also measure this plainserver binary (the ungoverned mcp-go baseline) serving -data")
	flag.StringVar(&o.data, "data", "", "directory plainserver serves at /data")
	flag.BoolVar(&o.verbose, "v", false, "print every run")
	flag.Parse()
	if o.bin == "" || o.config == "" {
		fmt.Fprintln(os.Stderr, "usage: startup -bin BIN -config CFG [-expect FILE] [-n 30] [-cold 5]")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	var want []byte
	if o.expect != "" {
		var err error
		if want, err = os.ReadFile(o.expect); err != nil {
			return err
		}
	}
	cfgText, err := os.ReadFile(o.config)
	if err != nil {
		return err
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "startup-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(o.work)
	}
	fmt.Printf("startup: %s serve --config CFG --quiet (load average %s)\n", o.bin, benchutil.LoadAvg())

	var cold []sample
	for i := range o.cold {
		dir := filepath.Join(o.work, fmt.Sprintf("cold-%d", i))
		if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
			return err
		}
		cfg := filepath.Join(dir, "agentmesh.yaml")
		if err := os.WriteFile(cfg, cfgText, 0o600); err != nil {
			return err
		}
		s, err := once(o, agentmesh(o, cfg), want)
		if err != nil {
			return fmt.Errorf("cold run %d: %w", i, err)
		}
		if _, err := os.Stat(filepath.Join(dir, ".agentmesh")); err != nil {
			return fmt.Errorf("cold run %d: no state directory was created: %w", i, err)
		}
		o.logRun("cold", i, s)
		cold = append(cold, s)
	}
	if err := os.MkdirAll(benchutil.HomeFor(o.config), 0o700); err != nil {
		return err
	}
	if _, err := once(o, agentmesh(o, o.config), want); err != nil { // priming: identity, page cache
		return fmt.Errorf("priming run: %w", err)
	}
	var warm, plain []sample
	for i := range o.n {
		s, err := once(o, agentmesh(o, o.config), want)
		if err != nil {
			return fmt.Errorf("warm run %d: %w", i, err)
		}
		o.logRun("warm", i, s)
		warm = append(warm, s)
		if o.plain == "" {
			continue
		}
		if i == 0 {
			if _, err := once(o, exec.Command(o.plain, "-root", o.data), want); err != nil { // priming
				return fmt.Errorf("plainserver priming run: %w", err)
			}
		}
		// Interleaved with the agentmesh runs, so both see the same load.
		if s, err = once(o, exec.Command(o.plain, "-root", o.data), want); err != nil {
			return fmt.Errorf("plainserver run %d: %w", i, err)
		}
		o.logRun("plain", i, s)
		plain = append(plain, s)
	}
	report("agentmesh cold (first start: creates the identity)", cold)
	report("agentmesh warm (identity exists)", warm)
	report("plainserver (ungoverned mcp-go baseline)", plain)
	fmt.Printf("load average after: %s\n", benchutil.LoadAvg())
	return nil
}

func (o options) logRun(kind string, i int, s sample) {
	if o.verbose {
		fmt.Printf("  %s %2d: initialize %s ms, first call %s ms, RSS %d KiB → %d KiB (peak %d KiB)\n",
			kind, i, benchutil.Ms(s.init), benchutil.Ms(s.call), s.rssInit, s.rss, s.hwm)
	}
}

func report(title string, ss []sample) {
	if len(ss) == 0 {
		return
	}
	var inits, calls []time.Duration
	var rssInit, rss, hwm []time.Duration // KiB, stored as durations to reuse Summarize
	for _, s := range ss {
		inits, calls = append(inits, s.init), append(calls, s.call)
		rssInit, rss, hwm = append(rssInit, time.Duration(s.rssInit)), append(rss, time.Duration(s.rss)), append(hwm, time.Duration(s.hwm))
	}
	i, c := benchutil.Summarize(inits), benchutil.Summarize(calls)
	ri, r, h := benchutil.Summarize(rssInit), benchutil.Summarize(rss), benchutil.Summarize(hwm)
	mb := func(kib time.Duration) string {
		return fmt.Sprintf("%.1f MiB (%.1f MB)", float64(kib)/1024, float64(kib)*1024/1e6)
	}
	fmt.Printf("%s, %d runs\n", title, len(ss))
	fmt.Printf("  start → initialize response: p50 %s ms  p90 %s ms  min %s ms  max %s ms\n", benchutil.Ms(i.P50), benchutil.Ms(i.P90), benchutil.Ms(i.Min), benchutil.Ms(i.Max))
	fmt.Printf("  first filesystem_read call:  p50 %s ms  p90 %s ms  min %s ms  max %s ms\n", benchutil.Ms(c.P50), benchutil.Ms(c.P90), benchutil.Ms(c.Min), benchutil.Ms(c.Max))
	fmt.Printf("  VmRSS after initialize:      p50 %s  max %s\n", mb(ri.P50), mb(ri.Max))
	fmt.Printf("  VmRSS after the first call:  p50 %s  max %s  (peak VmHWM p50 %s  max %s)\n", mb(r.P50), mb(r.Max), mb(h.P50), mb(h.Max))
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"startup-bench","version":"1"}}}` + "\n"

// agentmesh is the command of one agentmesh start.
func agentmesh(o options, cfg string) *exec.Cmd {
	cmd := exec.Command(o.bin, "serve", "--config", cfg, "--quiet")
	cmd.Env = benchutil.Env(benchutil.HomeFor(cfg))
	cmd.Dir = filepath.Dir(cfg)
	return cmd
}

// once starts the server, measures and stops it.
func once(o options, cmd *exec.Cmd, want []byte) (sample, error) {
	var s sample
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return s, err
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		return s, err
	}
	stdout := bufio.NewReader(stdoutPipe)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return s, err
	}
	defer func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	fail := func(err error) (sample, error) {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w (stderr: %s)", err, msg)
		}
		return s, err
	}
	if _, err := io.WriteString(stdin, initialize); err != nil {
		return fail(err)
	}
	line, err := stdout.ReadBytes('\n')
	s.init = time.Since(t0)
	if err != nil {
		return fail(fmt.Errorf("reading the initialize response: %w", err))
	}
	if err := checkInitialize(line); err != nil {
		return fail(err)
	}
	if s.rssInit, _, err = benchutil.RSSKB(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	call := fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"filesystem_read","arguments":{"path":%q}}}`+"\n", o.path)
	t1 := time.Now()
	if _, err := io.WriteString(stdin, call); err != nil {
		return fail(err)
	}
	line, err = stdout.ReadBytes('\n')
	s.call = time.Since(t1)
	if err != nil {
		return fail(fmt.Errorf("reading the tools/call response: %w", err))
	}
	if err := checkCall(line, want); err != nil {
		return fail(err)
	}
	if s.rss, s.hwm, err = benchutil.RSSKB(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	return s, nil
}

func checkInitialize(line []byte) error {
	var r struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(line, &r); err != nil || r.ID != 1 || r.Result == nil {
		return fmt.Errorf("unexpected initialize response: %s", bytes.TrimSpace(line))
	}
	return nil
}

func checkCall(line, want []byte) error {
	var r struct {
		ID     int `json:"id"`
		Result *struct {
			IsError bool `json:"isError"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if err := json.Unmarshal(line, &r); err != nil || r.ID != 2 || r.Result == nil {
		return fmt.Errorf("unexpected tools/call response: %s", bytes.TrimSpace(line))
	}
	if r.Result.IsError || len(r.Result.Content) == 0 {
		return fmt.Errorf("filesystem_read failed: %s", bytes.TrimSpace(line))
	}
	if want != nil && r.Result.Content[0].Text != string(want) {
		return errors.New("filesystem_read returned content different from the file (redacted?)")
	}
	return nil
}
