package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rogpeppe/go-internal/testscript"
)

// mcpStep is one line of an mcp-script file.
type mcpStep struct {
	// Call a tool with Args; Want is allowed, blocked, redacted or error
	// (isError with "agentmesh: call refused"); Text must appear in the
	// result; NotText must not.
	Call    string         `json:"call"`
	Args    map[string]any `json:"args"`
	Want    string         `json:"want"`
	Text    string         `json:"text"`
	NotText string         `json:"not_text"`
	// Unknown calls a tool the server does not have: a JSON-RPC error.
	Unknown string `json:"unknown"`
	// Sleep waits ("3s").
	Sleep string `json:"sleep"`
	// Run runs agentmesh with these arguments (and --config) while the
	// session stays open; it must succeed unless Fail, and its output
	// must contain Out.
	Run  []string `json:"run"`
	Fail bool     `json:"fail"`
	Out  string   `json:"out"`
	// Shell runs a command line with sh -c in $WORK.
	Shell string `json:"shell"`
	// List lists the tools: each of Has must be listed, none of Lacks;
	// Describe maps a tool to text its description must contain.
	List     bool              `json:"list"`
	Has      []string          `json:"has"`
	Lacks    []string          `json:"lacks"`
	Describe map[string]string `json:"describe"`
}

// cmdMCPScript drives a real `agentmesh serve` over stdio with the mcp-go
// client, one step per line of SCRIPT (JSON), in one session:
//
//	mcp-script CONFIG SCRIPT [SERVE ARGS...]
//
// serve's stderr (the console view) is written to $WORK/serve.stderr.
func cmdMCPScript(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: mcp-script CONFIG SCRIPT [SERVE ARGS...]")
	}
	cfg := ts.MkAbs(args[0])
	exe, err := exec.LookPath("agentmesh")
	ts.Check(err)
	stderr, err := os.Create(ts.MkAbs("serve.stderr"))
	ts.Check(err)
	defer stderr.Close()
	var env []string
	for _, k := range []string{"HOME", "XDG_CONFIG_HOME", "PATH", "NO_COLOR", "TMPDIR"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	// A script's state database and state directory are serve's too.
	for _, k := range []string{"AGENTMESH_DATABASE_URL", "AGENTMESH_STATE_DIR"} {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	// serve runs in $WORK, like exec does, so upstreams it starts do too.
	inWork := transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, command, args...)
		cmd.Env, cmd.Dir = env, ts.Getenv("WORK")
		return cmd, nil
	})
	c, err := client.NewStdioMCPClientWithOptions(exe, env, append([]string{"serve", "--config", cfg}, args[2:]...), transport.WithCommandStderrWriter(stderr), inWork)
	ts.Check(err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "mcp-script", Version: "1"}
	_, err = c.Initialize(ctx, init)
	ts.Check(err)

	f, err := os.Open(ts.MkAbs(args[1]))
	ts.Check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var st mcpStep
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			ts.Fatalf("%s:%d: %v", args[1], n, err)
		}
		switch {
		case st.Sleep != "":
			d, err := time.ParseDuration(st.Sleep)
			ts.Check(err)
			time.Sleep(d)
		case st.Run != nil:
			cmd := exec.Command(exe, append([]string{"--config", cfg}, st.Run...)...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			ts.Logf("step %d: agentmesh %s\n%s", n, strings.Join(st.Run, " "), out)
			if (err != nil) != st.Fail {
				ts.Fatalf("step %d: agentmesh %s: error %v, want failure %v", n, strings.Join(st.Run, " "), err, st.Fail)
			}
			if !strings.Contains(string(out), st.Out) {
				ts.Fatalf("step %d: agentmesh %s: output lacks %q", n, strings.Join(st.Run, " "), st.Out)
			}
		case st.Shell != "":
			cmd := exec.Command("sh", "-c", st.Shell)
			cmd.Dir = ts.Getenv("WORK")
			out, err := cmd.CombinedOutput()
			if err != nil {
				ts.Fatalf("step %d: %s: %v\n%s", n, st.Shell, err, out)
			}
		case st.List:
			res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
			ts.Check(err)
			desc := map[string]string{}
			for _, t := range res.Tools {
				desc[t.Name] = t.Description
			}
			for _, name := range st.Has {
				if _, ok := desc[name]; !ok {
					ts.Fatalf("step %d: tools/list lacks %s", n, name)
				}
			}
			for _, name := range st.Lacks {
				if _, ok := desc[name]; ok {
					ts.Fatalf("step %d: tools/list has %s", n, name)
				}
			}
			for name, want := range st.Describe {
				if !strings.Contains(desc[name], want) {
					ts.Fatalf("step %d: description of %s is %q, want it to contain %q", n, name, desc[name], want)
				}
			}
		case st.Unknown != "":
			req := mcp.CallToolRequest{}
			req.Params.Name = st.Unknown
			if _, err := c.CallTool(ctx, req); err == nil {
				ts.Fatalf("step %d: calling unknown tool %q did not fail", n, st.Unknown)
			}
		default:
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = st.Call, st.Args
			res, err := c.CallTool(ctx, req)
			ts.Check(err)
			var text strings.Builder
			for _, ct := range res.Content {
				if t, ok := ct.(mcp.TextContent); ok {
					text.WriteString(t.Text)
				}
			}
			got := "allowed"
			switch {
			case res.IsError && strings.Contains(text.String(), "agentmesh: call refused"):
				got = "error"
			case res.IsError:
				got = "blocked"
			case strings.Contains(text.String(), "[REDACTED:") || strings.Contains(text.String(), "[WITHHELD"):
				got = "redacted"
			}
			ts.Logf("step %d: %s %v -> %s: %s", n, st.Call, st.Args, got, text.String())
			if st.Want != "" && got != st.Want {
				ts.Fatalf("step %d: %s %v: got %s, want %s: %s", n, st.Call, st.Args, got, st.Want, text.String())
			}
			if st.Text != "" && !strings.Contains(text.String(), st.Text) {
				ts.Fatalf("step %d: %s: result %q does not contain %q", n, st.Call, text.String(), st.Text)
			}
			if st.NotText != "" && strings.Contains(text.String(), st.NotText) {
				ts.Fatalf("step %d: %s: result contains %q", n, st.Call, st.NotText)
			}
		}
	}
	ts.Check(sc.Err())
}
