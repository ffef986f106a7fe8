// Command loadgen is the throughput benchmark of `agentmesh serve --http`:
// -sessions concurrent streamable HTTP clients (github.com/mark3labs/mcp-go/
// client, NewStreamableHttpClient), each with its own connection, are
// initialized and then call the same filesystem_read back to back for
// -duration after an untimed -warmup. It reports calls/s, latency
// percentiles and errors (a transport error, an isError result, or content
// different from -expect all count). With -pid it also reports the server's
// CPU time per call (from /proc/PID/stat) and its VmRSS.
//
// A fleet of replicas is measured in one run: -url repeated (or a comma
// list) spreads the sessions over the URLs round-robin (session i talks to
// URL i mod n), and -pid repeated sums the replicas' CPU time and reports
// each one's VmRSS; calls and latency are then also reported per URL.
// -dbpid names the database server the replicas share (a PostgreSQL
// postmaster): its CPU and its children's (the backends) are reported per
// call apart from the servers', and not counted as other processes.
//
//	go run ./scripts/bench/serve/loadgen -url http://127.0.0.1:PORT/mcp -expect FILE \
//	    [-sessions 16] [-duration 10s] [-warmup 2s] [-pid SERVERPID]
//	go run ./scripts/bench/serve/loadgen -url URL1,URL2 -pid PID1 -pid PID2 [-dbpid POSTMASTER] ...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/scripts/bench/serve/internal/benchutil"
)

type options struct {
	urls             list
	pids             []int
	path, expect     string
	protocol         string
	bearer           string
	sessions, dbpid  int
	duration, warmup time.Duration
}

// list is a repeatable flag whose values may also be comma lists.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

type worker struct {
	url      int // index into options.urls
	durs     []time.Duration
	errs     int // in the timed period
	warmErrs int
	last     time.Time
	errMsg   string
	proto    string
}

func main() {
	var o options
	flag.Var(&o.urls, "url", "streamable HTTP endpoint, e.g. http://127.0.0.1:8080/mcp; repeat it (or give a comma list) to spread the sessions over several servers round-robin")
	flag.StringVar(&o.path, "path", "/data/bench.txt", "virtual path to read")
	flag.StringVar(&o.expect, "expect", "", "host file whose content every call must return unchanged")
	flag.IntVar(&o.sessions, "sessions", 16, "concurrent sessions (one client and connection each)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "timed period")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "untimed calls first")
	flag.Func("pid", "server process id, for its CPU time and RSS; repeat it (or give a comma list) for several servers: their CPU is summed", func(v string) error {
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return fmt.Errorf("%q is not a process id", s)
			}
			o.pids = append(o.pids, n)
		}
		return nil
	})
	flag.IntVar(&o.dbpid, "dbpid", 0, "database server process id (a PostgreSQL postmaster), for its and its children's CPU time")
	flag.StringVar(&o.protocol, "protocol", "", "pin the MCP protocol version (e.g. 2025-11-25 for initialize-handshake sessions); default: the client negotiates")
	flag.StringVar(&o.bearer, "bearer", "", "send Authorization: Bearer TOKEN (an API key or access token) with every request")
	flag.Parse()
	if len(o.urls) == 0 || o.sessions < 1 {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL[,URL...] [-expect FILE] [-sessions 16] [-duration 10s] [-pid PID[,PID...]]")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
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
	ctx := context.Background()
	clients := make([]*client.Client, o.sessions)
	workers := make([]*worker, o.sessions)
	for i := range clients {
		u := i % len(o.urls)
		c, proto, err := connect(ctx, o.urls[u], o.protocol, o.bearer)
		if err != nil {
			return fmt.Errorf("session %d (%s): %w", i, o.urls[u], err)
		}
		defer c.Close()
		clients[i], workers[i] = c, &worker{url: u, proto: proto, durs: make([]time.Duration, 0, 1<<16)}
	}
	var stop atomic.Bool
	var measuring atomic.Bool
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := workers[i]
			for !stop.Load() {
				timed := measuring.Load()
				t0 := time.Now()
				err := call(ctx, c, o.path, want)
				d := time.Since(t0)
				if !timed {
					if err != nil {
						w.warmErrs++
						w.errMsg = err.Error()
					}
					continue
				}
				w.durs = append(w.durs, d)
				w.last = t0.Add(d)
				if err != nil {
					w.errs++
					w.errMsg = err.Error()
				}
			}
		}()
	}
	time.Sleep(o.warmup)
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	cpu0, db0 := cpuOf(o.pids), dbCPU(o.dbpid)
	busy0, total0, _ := benchutil.SystemCPU()
	load0 := benchutil.LoadAvg()
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(o.duration)
	stop.Store(true)
	cpu1, db1 := cpuOf(o.pids), dbCPU(o.dbpid)
	busy1, total1, _ := benchutil.SystemCPU()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	wg.Wait()

	var all []time.Duration
	errs, warmErrs := 0, 0
	end := t0
	msg := ""
	for _, w := range workers {
		all = append(all, w.durs...)
		errs += w.errs
		warmErrs += w.warmErrs
		if w.last.After(end) {
			end = w.last
		}
		if w.errMsg != "" {
			msg = w.errMsg
		}
	}
	elapsed := end.Sub(t0)
	s := benchutil.Summarize(all)
	target := o.urls[0]
	if len(o.urls) > 1 {
		target = fmt.Sprintf("%d URLs round-robin (%s)", len(o.urls), strings.Join(o.urls, ", "))
	}
	fmt.Printf("loadgen: %s, %d sessions (protocol %s), %s timed after %s warm-up (load average %s at start, %s at end)\n",
		target, o.sessions, workers[0].proto, o.duration, o.warmup, load0, benchutil.LoadAvg())
	fmt.Printf("  calls %d in %.2f s = %.0f calls/s; errors %d (%d during warm-up)\n", s.N, elapsed.Seconds(), float64(s.N)/elapsed.Seconds(), errs, warmErrs)
	fmt.Printf("  latency ms: p50 %s  p90 %s  p99 %s  mean %s  max %s\n", benchutil.Ms(s.P50), benchutil.Ms(s.P90), benchutil.Ms(s.P99), benchutil.Ms(s.Mean), benchutil.Ms(s.Max))
	if len(o.urls) > 1 {
		perURL(o.urls, workers, elapsed)
	}
	if len(o.pids) > 0 && s.N > 0 {
		srv := cpu1 - cpu0
		fmt.Printf("  server CPU %.2f s (%.0f%% of one core) = %s µs/call; VmRSS %s MiB\n",
			srv.Seconds(), 100*srv.Seconds()/o.duration.Seconds(), benchutil.Us(srv/time.Duration(s.N)), rssOf(o.pids))
	}
	if o.dbpid != 0 && s.N > 0 {
		db := db1 - db0
		fmt.Printf("  database CPU %.2f s (%.0f%% of one core) = %s µs/call (pid %d and its children)\n",
			db.Seconds(), 100*db.Seconds()/o.duration.Seconds(), benchutil.Us(db/time.Duration(s.N)), o.dbpid)
	}
	gen := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	if s.N > 0 {
		fmt.Printf("  load generator CPU %.2f s (%.0f%% of one core) = %s µs/call\n", gen.Seconds(), 100*gen.Seconds()/o.duration.Seconds(), benchutil.Us(gen/time.Duration(s.N)))
	}
	if total1 > total0 {
		// Clock ticks of all CPUs: the share of the machine's capacity in
		// use, and what is left of it for processes other than these two.
		busy := float64(busy1-busy0) / float64(total1-total0)
		cores := busy * float64(runtime.NumCPU())
		ours := (cpu1 - cpu0 + db1 - db0 + gen).Seconds() / elapsed.Seconds()
		who := "server and load generator"
		if o.dbpid != 0 {
			who = "servers, database and load generator"
		}
		fmt.Printf("  machine: %.0f%% of all %d CPUs busy = %.2f cores, of which %s %.2f, other processes ≈ %.2f\n",
			100*busy, runtime.NumCPU(), cores, who, ours, max(0, cores-ours))
	}
	if msg != "" {
		fmt.Printf("  last error: %s\n", msg)
	}
	if errs+warmErrs > 0 {
		return errors.New("some calls failed")
	}
	return nil
}

// cpuOf is the CPU time the processes used so far, summed (a process that
// cannot be read counts 0).
func cpuOf(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		t, _ := benchutil.CPUTime(pid)
		sum += t
	}
	return sum
}

// dbCPU is the CPU time of the database server's process tree so far (0
// without one).
func dbCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	t, _ := benchutil.TreeCPUTime(pid)
	return t
}

// rssOf is each process's VmRSS in MiB, in the order given.
func rssOf(pids []int) string {
	var out []string
	for _, pid := range pids {
		rss, _, _ := benchutil.RSSKB(pid)
		out = append(out, fmt.Sprintf("%.1f", float64(rss)/1024))
	}
	return strings.Join(out, ", ")
}

// perURL prints each URL's share of the timed calls: a fleet's replicas
// should serve alike.
func perURL(urls []string, workers []*worker, elapsed time.Duration) {
	for u, url := range urls {
		var durs []time.Duration
		errs := 0
		for _, w := range workers {
			if w.url == u {
				durs = append(durs, w.durs...)
				errs += w.errs
			}
		}
		s := benchutil.Summarize(durs)
		fmt.Printf("  %s: calls %d = %.0f calls/s; errors %d; p50 %s p99 %s ms\n",
			url, s.N, float64(s.N)/elapsed.Seconds(), errs, benchutil.Ms(s.P50), benchutil.Ms(s.P99))
	}
}

// connect opens and initializes one session on its own HTTP connection
// pool (http.DefaultTransport would keep only 2 idle connections for all
// sessions together).
func connect(ctx context.Context, url, protocol, bearer string) (*client.Client, string, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 4, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(hc), transport.WithHTTPTimeout(30 * time.Second)}
	if bearer != "" {
		opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + bearer}))
	}
	var c *client.Client
	if protocol == "" {
		var err error
		if c, err = client.NewStreamableHttpClient(url, opts...); err != nil {
			return nil, "", err
		}
	} else {
		t, err := transport.NewStreamableHTTP(url, opts...)
		if err != nil {
			return nil, "", err
		}
		c = client.NewClient(t, client.WithProtocolVersion(protocol))
	}
	if err := c.Start(ctx); err != nil {
		return nil, "", err
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var req mcp.InitializeRequest
	req.Params.ClientInfo = mcp.Implementation{Name: "loadgen", Version: "1"}
	res, err := c.Initialize(ictx, req)
	if err != nil {
		c.Close()
		return nil, "", fmt.Errorf("initialize: %w", err)
	}
	return c, res.ProtocolVersion, nil
}

func call(ctx context.Context, c *client.Client, path string, want []byte) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var req mcp.CallToolRequest
	req.Params.Name = "filesystem_read"
	req.Params.Arguments = map[string]any{"path": path}
	res, err := c.CallTool(cctx, req)
	if err != nil {
		return err
	}
	var text string
	if len(res.Content) > 0 {
		if tc, ok := mcp.AsTextContent(res.Content[0]); ok {
			text = tc.Text
		}
	}
	if res.IsError {
		return fmt.Errorf("the call failed: %s", text)
	}
	if want != nil && text != string(want) {
		return errors.New("the result differs from the file (redacted or withheld?)")
	}
	return nil
}
