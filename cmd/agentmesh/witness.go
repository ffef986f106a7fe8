package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/witness"
)

type witnessOptions struct {
	Dir  string
	Name string
	HTTP string
	Logs []string
	// Ready is told the bound address (tests).
	Ready func(addr string)
}

func newWitnessCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Run a C2SP tlog-witness that cosigns other agentmesh logs' checkpoints",
		Long: `A witness keeps, for each log it trusts, the latest checkpoint it cosigned, and
cosigns a new one only when a consistency proof shows that it extends that
one (https://c2sp.org/tlog-witness). Run it on another host than the logs it
witnesses: the local witness file cannot stop someone who controls the whole
host, an external witness can. Logs submit to it when their agentmesh.yaml
lists it under audit.witnesses; 'agentmesh audit verify --witness-key'
requires its cosignatures.`,
	}
	cmd.AddCommand(newWitnessServeCmd(g), newWitnessKeyCmd(g))
	return cmd
}

func defaultWitnessDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".agentmesh-witness"
	}
	return filepath.Join(home, ".agentmesh-witness")
}

func defaultWitnessName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return "agentmesh-witness/" + h
}

func witnessFlags(cmd *cobra.Command, opts *witnessOptions) {
	cmd.Flags().StringVar(&opts.Dir, "dir", defaultWitnessDir(), "the witness's key and state")
	cmd.Flags().StringVar(&opts.Name, "name", defaultWitnessName(), "the witness's key name, used when its key is created")
}

func newWitnessKeyCmd(g *globals) *cobra.Command {
	opts := witnessOptions{}
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Print the witness's verifier key (creating the key on first use)",
		Long: `Key prints the verifier key logs list in audit.witnesses[].key and auditors
pass to 'agentmesh audit verify --witness-key'. The private key is DIR/witness.key
(mode 0600).`,
		Example: "  agentmesh witness key --dir /var/lib/agentmesh-witness",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := witness.LoadOrCreateKey(filepath.Join(opts.Dir, "witness.key"), opts.Name)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.io.Out, s.VKey)
			return nil
		},
	}
	witnessFlags(cmd, &opts)
	return cmd
}

func newWitnessServeCmd(g *globals) *cobra.Command {
	opts := witnessOptions{}
	cmd := &cobra.Command{
		Use:   "serve --http ADDR --log VKEY...",
		Short: "Serve the tlog-witness protocol over HTTP",
		Long: `Serve answers POST /add-checkpoint (C2SP tlog-witness) for the logs given
with --log (their verifier keys, as 'agentmesh identity show' prints them):
it cosigns a checkpoint that extends the one it cosigned last (409 Conflict
with its size when the log's idea of it is stale; 422 when the consistency
proof fails; 409 for another root at the same size) and keeps refused
requests in DIR/evidence. GET /checkpoint?origin=ORIGIN returns the latest
checkpoint it cosigned for a log. State persists in DIR; one process per DIR.`,
		Example: `  agentmesh witness serve --http 0.0.0.0:7380 --log "$(ssh log-host agentmesh identity show --output json | jq -r '.verifier_keys[0]')"`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.HTTP == "" {
				return usageError(c, "--http ADDR is required, e.g. --http 127.0.0.1:7380")
			}
			if len(opts.Logs) == 0 {
				return usageError(c, "--log VKEY is required: the verifier key of each log to witness (`agentmesh identity show` on the log's host)")
			}
			return witnessServeRun(g, opts)
		},
	}
	witnessFlags(cmd, &opts)
	cmd.Flags().StringVar(&opts.HTTP, "http", "", "listen address, HOST:PORT")
	cmd.Flags().StringArrayVar(&opts.Logs, "log", nil, "verifier key of a log to witness (repeatable)")
	return cmd
}

func witnessServeRun(g *globals, opts witnessOptions) error {
	unlock, err := witness.Lock(opts.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	signer, err := witness.LoadOrCreateKey(filepath.Join(opts.Dir, "witness.key"), opts.Name)
	if err != nil {
		return err
	}
	srv, err := witness.NewServer(opts.Dir, signer, opts.Logs)
	if err != nil {
		return err
	}
	srv.Logf = func(format string, args ...any) { fmt.Fprintf(g.io.Err, "agentmesh: "+format+"\n", args...) }
	ln, err := net.Listen("tcp", opts.HTTP)
	if err != nil {
		return fmt.Errorf("witness serve --http %s: %w", opts.HTTP, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	fmt.Fprintf(g.io.Err, "agentmesh: witness %s serving on http://%s for %d log key(s)\n  key %s\n", signer.Name(), ln.Addr(), len(opts.Logs), signer.VKey)
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
