package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// upstream is one governed MCP server and its supervisor: it keeps a
// session open, restarting a stdio server that exits (with backoff), and
// refreshes the catalog after each (re)start and on list_changed.
type upstream struct {
	cfg    config.Upstream
	prefix string
	p      *Proxy

	mu      sync.Mutex
	cur     *conn
	ready   chan struct{} // closed when cur is set; replaced when it goes
	lastErr string        // why there is no session, for refused calls

	firstOnce sync.Once
	// calls are the client calls in progress on this upstream, oldest
	// first: the upstream's own requests go to the newest (requests.go).
	callsMu sync.Mutex
	calls   []*inflight
	// refreshing serializes catalog refreshes (a restart and list_changed
	// notifications may overlap): the last listing wins, whole.
	refreshing sync.Mutex
	// what this upstream exposes besides tools, to remove what vanished
	resourceURIs map[string]bool
	promptNames  map[string]bool
	// lastCaps are the capabilities of the newest session (everUp once
	// there was one), guarded by mu.
	lastCaps   capabilities
	everUp     bool
	lastModern bool // the session speaks 2026-07-28 (conn.modern)
	// listen is the subscriptions/listen held open to a 2026-07-28
	// upstream (subscriptions.go).
	listen listenState
	// rawRequests are the raw params of requests the upstream sent us,
	// by id, until answered (requests.go).
	rawRequests sync.Map
}

// firstDone marks the upstream's first start as over (listed or failed).
func (u *upstream) firstDone() { u.firstOnce.Do(u.p.first.Done) }

func newUpstream(p *Proxy, cfg config.Upstream) *upstream {
	prefix := cfg.Name + "__"
	if cfg.Prefix != nil {
		prefix = *cfg.Prefix
	}
	return &upstream{cfg: cfg, prefix: prefix, p: p, ready: make(chan struct{}), lastErr: "starting"}
}

// Backoff bounds between restarts of a failing upstream.
var (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// run keeps a session with the upstream until ctx ends.
func (u *upstream) run(ctx context.Context) {
	backoff := minBackoff
	for ctx.Err() == nil {
		started := time.Now()
		c, err := dial(ctx, u.cfg, u.p.opts.Version, u.p.opts.Stderr, u.notification, u.answer, u.observe, u.p.warnf)
		if err != nil {
			u.setDown(fmt.Sprintf("it could not be started: %v", err))
			u.firstDone()
			u.p.warnf("upstream %s: %v; retrying in %s", u.cfg.Name, err, backoff)
		} else {
			c.logLevel = u.p.requestLogLevel
			u.mu.Lock()
			u.lastCaps, u.everUp, u.lastModern = c.server.Capabilities, true, c.modern
			u.mu.Unlock()
			if err := u.p.refresh(ctx, u, c); err != nil {
				u.p.warnf("upstream %s: listing its tools: %v", u.cfg.Name, err)
			}
			u.setUp(c)
			// A restarted upstream has forgotten what clients asked of it.
			go u.p.restore(ctx, u)
			select {
			case <-ctx.Done():
				u.setDown("agentmesh is shutting down")
				c.close()
				return
			case <-c.done:
			}
			status := "the connection closed"
			if c.proc != nil {
				status = c.proc.exitStatus()
			}
			u.setDown("it exited (" + status + ")")
			c.close()
			if time.Since(started) > time.Minute {
				backoff = minBackoff
			}
			u.p.warnf("upstream %s exited (%s); restarting in %s", u.cfg.Name, status, backoff)
			u.p.opts.Metrics.UpstreamRestarted(u.cfg.Name)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (u *upstream) setUp(c *conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.cur = c
	close(u.ready)
}

func (u *upstream) setDown(why string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastErr = why
	if u.cur != nil {
		u.cur = nil
		u.ready = make(chan struct{})
	}
}

// session returns the current session, waiting up to startTimeout for a
// (re)starting upstream.
func (u *upstream) session(ctx context.Context) (*conn, error) {
	u.mu.Lock()
	c, ready := u.cur, u.ready
	u.mu.Unlock()
	if c != nil {
		return c, nil
	}
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case <-ready:
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.cur != nil {
			return u.cur, nil
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return nil, fmt.Errorf("upstream %s is not available: %s", u.cfg.Name, u.lastErr)
}

// call forwards one request, bounded by the upstream's timeout, and turns
// the ways it can fail into errors that name the upstream.
func (u *upstream) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	return u.callAlive(ctx, method, params, nil)
}

// errTimedOut is the cause of a call cancelled for lack of an answer.
var errTimedOut = errors.New("timed out")

// maxTimeouts bounds a call kept alive by progress: at most this many
// timeouts in all (MCP 2025-11-25, "Timeouts": a progress notification may
// reset the timeout clock, but a maximum should always be enforced).
const maxTimeouts = 10

// callAlive is call for a request whose progress notifications signal
// alive: each one restarts the timeout, up to maxTimeouts × timeout.
func (u *upstream) callAlive(ctx context.Context, method string, params any, alive <-chan struct{}) (json.RawMessage, error) {
	c, err := u.session(ctx)
	if err != nil {
		return nil, err
	}
	timeout := u.cfg.Timeout.D()
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	tctx, cancelTotal := context.WithTimeout(ctx, maxTimeouts*timeout)
	defer cancelTotal()
	cctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	idle := time.AfterFunc(timeout, func() { cancel(errTimedOut) })
	defer idle.Stop()
	if alive != nil {
		go func() {
			for {
				select {
				case <-alive:
					idle.Reset(timeout)
				case <-cctx.Done():
					return
				}
			}
		}()
	}
	raw, err := c.request(cctx, method, params)
	switch {
	case err == nil:
		return raw, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("cancelled by the client; upstream %s was sent notifications/cancelled", u.cfg.Name)
	case cctx.Err() != nil && errors.Is(cctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("upstream %s did not finish %s within %s, %d times its timeout, despite its progress (it was sent notifications/cancelled)", u.cfg.Name, method, maxTimeouts*timeout, maxTimeouts)
	case cctx.Err() != nil:
		return nil, fmt.Errorf("upstream %s did not answer %s within %s (it was sent notifications/cancelled)", u.cfg.Name, method, timeout)
	case errors.Is(err, errSessionOver):
		select {
		case <-c.done:
		case <-time.After(time.Second):
		}
		why := "its session ended"
		if c.proc != nil {
			select {
			case <-c.proc.exited:
				why = "it exited (" + c.proc.exitStatus() + ")"
			default:
			}
		}
		return nil, fmt.Errorf("upstream %s failed during %s: %s; agentmesh restarts it", u.cfg.Name, method, why)
	default:
		var re *rpcError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("upstream %s: %w", u.cfg.Name, err)
		}
		return nil, fmt.Errorf("upstream %s: %s: %w", u.cfg.Name, method, err)
	}
}

// defaultTimeout bounds one forwarded request when the upstream sets none.
const defaultTimeout = 2 * time.Minute

// notification handles what the upstream sends unasked. It runs on the
// transport's read loop, so anything slow goes to a goroutine; progress is
// forwarded in order.
func (u *upstream) notification(n mcp.JSONRPCNotification) {
	switch n.Method {
	case "notifications/progress":
		u.p.forwardProgress(n.Params.AdditionalFields)
	case "notifications/tools/list_changed", "notifications/resources/list_changed", "notifications/prompts/list_changed":
		go func() {
			u.mu.Lock()
			c := u.cur
			u.mu.Unlock()
			if c == nil {
				return
			}
			if err := u.p.refresh(context.Background(), u, c); err != nil {
				u.p.warnf("upstream %s: refreshing after %s: %v", u.cfg.Name, n.Method, err)
			}
		}()
	case "notifications/message":
		u.p.forwardLog(u, n.Params.AdditionalFields)
	case "notifications/resources/updated":
		u.p.forwardUpdated(u, n.Params.AdditionalFields)
	case string(mcp.MethodNotificationSubscriptionsAcknowledged):
		u.listenAcknowledged(n.Params.AdditionalFields)
	case string(mcp.MethodNotificationTasksStatus):
		u.p.forwardTaskStatus(u, n.Params.AdditionalFields)
	}
}

// listAll fetches every page of a list method and returns the raw items
// under key (MCP 2025-11-25, "Pagination").
func listAll(ctx context.Context, c *conn, method, key string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	cursor := ""
	for page := 0; page < maxPages; page++ {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		raw, err := c.request(ctx, method, params)
		if err != nil {
			return nil, err
		}
		var items map[string]json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("%s: malformed result: %w", method, err)
		}
		next := ""
		if v, ok := items["nextCursor"]; ok && string(v) != "null" {
			// A cursor we cannot read would silently cut the listing short.
			if err := json.Unmarshal(v, &next); err != nil {
				return nil, fmt.Errorf("%s: nextCursor is not a string: %w", method, err)
			}
		}
		var list []json.RawMessage
		if v, ok := items[key]; ok {
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, fmt.Errorf("%s: %q is not an array: %w", method, key, err)
			}
		}
		all = append(all, list...)
		if next == "" {
			return all, nil
		}
		cursor = next
	}
	return nil, fmt.Errorf("%s: more than %d pages", method, maxPages)
}

const maxPages = 100

// down says why the upstream has no session now ("" when it has one).
func (u *upstream) down() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cur != nil {
		return ""
	}
	return u.lastErr
}
