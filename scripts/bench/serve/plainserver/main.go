// Command plainserver is the ungoverned baseline of the serve benchmarks: an
// mcp-go server with one filesystem_read tool reading UTF-8 files from a
// directory through os.Root, with no credential, scope, policy, redaction,
// audit or trust step. It is built with the same mcp-go server options and
// transports as `agentmesh serve`, so the difference between the two is the
// governance pipeline.
//
//	plainserver -root DIR [-mount /data] [-http 127.0.0.1:PORT]
//
// Stdio by default; with -http it serves streamable HTTP at /mcp and prints
// "plainserver: listening on http://ADDR/mcp" on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	dir := flag.String("root", "", "directory served at -mount")
	mount := flag.String("mount", "/data", "virtual path of -root")
	addr := flag.String("http", "", "serve streamable HTTP at ADDR/mcp instead of stdio")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: plainserver -root DIR [-mount /data] [-http ADDR]")
		os.Exit(2)
	}
	if err := run(*dir, *mount, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "plainserver:", err)
		os.Exit(1)
	}
}

func run(dir, mount, addr string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	s := server.NewMCPServer("plainserver", "bench", server.WithToolCapabilities(true), server.WithRecovery())
	s.AddTool(mcp.NewTool("filesystem_read",
		mcp.WithDescription("Read a UTF-8 text file by its virtual path (ungoverned benchmark baseline)."),
		mcp.WithString("path", mcp.Required(), mcp.Description("Virtual path of the file, starting with "+mount)),
		mcp.WithReadOnlyHintAnnotation(true),
	), readHandler(root, mount))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if addr == "" {
		err := server.NewStdioServer(s).Listen(ctx, os.Stdin, os.Stdout)
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp")))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "plainserver: listening on http://%s/mcp\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}

func readHandler(root *os.Root, mount string) server.ToolHandlerFunc {
	prefix := strings.TrimSuffix(mount, "/") + "/"
	return func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, err := req.RequireString("path")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		rel, ok := strings.CutPrefix(p, prefix)
		if !ok || rel == "" {
			return mcp.NewToolResultError(fmt.Sprintf("%s is not under %s", p, mount)), nil
		}
		data, err := root.ReadFile(rel)
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		if !utf8.Valid(data) {
			return mcp.NewToolResultError(p + " is not UTF-8 text"), nil
		}
		return mcp.NewToolResultText(string(data)), nil
	}
}
