package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Resource subscriptions (MCP 2025-11-25, "Server Features: Resources:
// Subscriptions") through the proxy.
//
// Each client's subscriptions are its own: agentmesh subscribes the owning
// upstream to a URI when the first client subscribes and unsubscribes it
// when the last one unsubscribes or its session ends, and sends an
// upstream's notifications/resources/updated only to the clients
// subscribed to that URI. A restarted upstream is subscribed again to
// every URI that still has subscribers. The updated notification carries
// only the URI; reading it is governed like any resources/read.
//
// An upstream that speaks MCP 2026-07-28 only has no resources/subscribe:
// agentmesh holds one subscriptions/listen request open to it (SEP-2575),
// whose filter names every URI its clients subscribed to, and replaces it
// whenever that set changes (a listen's filter is fixed when it opens). A
// subscription is established when the upstream's
// notifications/subscriptions/acknowledged lists its URI.

type subState struct {
	mu sync.Mutex
	// by URI: the upstream subscribed to it and the client sessions.
	byURI map[string]*subscription
}

type subscription struct {
	up       *upstream
	sessions map[string]bool
}

// owner is the upstream that serves uri: the one that listed it, else the
// one whose resource template matches it, else the only upstream offering
// subscriptions (a URI may be subscribed to before it exists).
func (p *Proxy) owner(uri string) (*upstream, error) {
	p.mu.RLock()
	u, ok := p.resources[uri]
	if !ok {
		keys := make([]string, 0, len(p.templateURIs))
		for k := range p.templateURIs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if t := p.templateURIs[k]; t != nil && t.Regexp().MatchString(uri) {
				u, ok = p.templates[k], true
				break
			}
		}
	}
	p.mu.RUnlock()
	if ok {
		return u, nil
	}
	var able []*upstream
	for _, u := range p.ups {
		if c, up := u.caps(); up && c.Resources != nil && c.Resources.Subscribe {
			able = append(able, u)
		}
	}
	if len(able) == 1 {
		return able[0], nil
	}
	return nil, fmt.Errorf("no upstream serves the resource %s: it is in no upstream's resources/list and matches no resource template", uri)
}

// subscribe adds session to uri's subscribers, subscribing the upstream
// first if it is the first.
func (p *Proxy) subscribe(session, uri string) error {
	u, err := p.owner(uri)
	if err != nil {
		return err
	}
	if c, _ := u.caps(); c.Resources == nil || !c.Resources.Subscribe {
		return fmt.Errorf("upstream %s, which serves %s, does not offer resource subscriptions", u.cfg.Name, uri)
	}
	p.subs.mu.Lock()
	defer p.subs.mu.Unlock()
	if p.subs.byURI == nil {
		p.subs.byURI = map[string]*subscription{}
	}
	s := p.subs.byURI[uri]
	if s == nil {
		s = &subscription{up: u, sessions: map[string]bool{}}
		if u.isModern() {
			p.subs.byURI[uri] = s
			if err := p.listen(u, uri); err != nil {
				delete(p.subs.byURI, uri)
				p.listen(u, "")
				return err
			}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			if _, err := u.call(ctx, string(mcp.MethodResourcesSubscribe), map[string]any{"uri": uri}); err != nil {
				return err
			}
			p.subs.byURI[uri] = s
		}
	}
	s.sessions[session] = true
	return nil
}

// unsubscribe removes session from uri's subscribers, unsubscribing the
// upstream when it was the last. Unsubscribing what was not subscribed is
// not an error (as for a server on its own).
func (p *Proxy) unsubscribe(session, uri string) error {
	p.subs.mu.Lock()
	defer p.subs.mu.Unlock()
	s := p.subs.byURI[uri]
	if s == nil || !s.sessions[session] {
		return nil
	}
	delete(s.sessions, session)
	if len(s.sessions) > 0 {
		return nil
	}
	delete(p.subs.byURI, uri)
	if s.up.isModern() {
		return p.listen(s.up, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	_, err := s.up.call(ctx, string(mcp.MethodResourcesUnsubscribe), map[string]any{"uri": uri})
	return err
}

// endSession drops everything a client session held: its subscriptions,
// its log level and its tasks.
func (p *Proxy) endSession(session string) {
	p.subs.mu.Lock()
	var uris []string
	for uri, s := range p.subs.byURI {
		if s.sessions[session] {
			uris = append(uris, uri)
		}
	}
	p.subs.mu.Unlock()
	for _, uri := range uris {
		if err := p.unsubscribe(session, uri); err != nil {
			p.warnf("unsubscribing %s after its client left: %v", uri, err)
		}
	}
	p.forgetLevel(session)
	p.tasks.forget(session)
	p.flushLogCounts()
	p.sessionEndMu.Lock()
	fs := p.sessionEnd
	p.sessionEndMu.Unlock()
	for _, f := range fs {
		f(session)
	}
}

// OnSessionEnd registers f to be called with the id of each client session
// that ends (a transport's per-session state, such as its Wire).
func (p *Proxy) OnSessionEnd(f func(session string)) {
	p.sessionEndMu.Lock()
	defer p.sessionEndMu.Unlock()
	p.sessionEnd = append(p.sessionEnd, f)
}

// forwardUpdated sends an upstream's notifications/resources/updated to
// the clients subscribed to its URI.
func (p *Proxy) forwardUpdated(u *upstream, fields map[string]any) {
	uri, _ := fields["uri"].(string)
	p.subs.mu.Lock()
	var sessions []string
	if s := p.subs.byURI[uri]; s != nil && s.up == u {
		for id := range s.sessions {
			sessions = append(sessions, id)
		}
	}
	p.subs.mu.Unlock()
	if len(sessions) == 0 || p.srv == nil {
		return
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return
	}
	params, err := rawFields(raw)
	if err != nil {
		return
	}
	for _, id := range sessions {
		p.srv.SendNotificationToSpecificClient(id, string(mcp.MethodNotificationResourceUpdated), params)
	}
}

// restore gives a (re)started upstream back what clients asked of it: its
// log level and its resource subscriptions.
func (p *Proxy) restore(ctx context.Context, u *upstream) {
	p.logs.mu.Lock()
	_, had := p.logs.sent[u]
	p.logs.mu.Unlock()
	if had {
		if want := p.wantedLevel(); want != "" {
			p.setUpstreamLevel(u, want, true)
		}
	}
	p.subs.mu.Lock()
	var uris []string
	for uri, s := range p.subs.byURI {
		if s.up == u {
			uris = append(uris, uri)
		}
	}
	if u.isModern() {
		if len(uris) > 0 {
			if err := p.listen(u, ""); err != nil {
				p.warnf("upstream %s: listening again for %v after its restart: %v", u.cfg.Name, uris, err)
			}
		}
		p.subs.mu.Unlock()
		return
	}
	p.subs.mu.Unlock()
	for _, uri := range uris {
		cctx, cancel := context.WithTimeout(ctx, startTimeout)
		if _, err := u.call(cctx, string(mcp.MethodResourcesSubscribe), map[string]any{"uri": uri}); err != nil {
			p.warnf("upstream %s: subscribing again to %s after its restart: %v", u.cfg.Name, uri, err)
		}
		cancel()
	}
}

// listenState is the subscriptions/listen request held open to a
// 2026-07-28 upstream.
type listenState struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	acks   chan []string // the URIs the current listen's ack lists
}

// listen replaces u's subscriptions/listen by one for every URI subscribed
// on it (none: the listen is closed), and waits for the upstream's
// acknowledgement; want, if set, must be among the URIs acknowledged. The
// caller holds p.subs.mu.
func (p *Proxy) listen(u *upstream, want string) error {
	var uris []string
	for uri, s := range p.subs.byURI {
		if s.up == u {
			uris = append(uris, uri)
		}
	}
	sort.Strings(uris)
	u.listen.mu.Lock()
	if u.listen.cancel != nil {
		u.listen.cancel()
		u.listen.cancel = nil
	}
	if len(uris) == 0 {
		u.listen.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	acks := make(chan []string, 1)
	u.listen.cancel, u.listen.acks = cancel, acks
	u.listen.mu.Unlock()
	c, err := u.session(ctx)
	if err != nil {
		return err
	}
	ended := make(chan error, 1)
	go func() {
		_, err := c.request(ctx, string(mcp.MethodSubscriptionsListen), map[string]any{"notifications": map[string]any{"resourceSubscriptions": uris}})
		if err != nil && ctx.Err() == nil {
			p.warnf("upstream %s: its subscriptions/listen ended: %v", u.cfg.Name, err)
		}
		ended <- err
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case got := <-acks:
		if want != "" && !slices.Contains(got, want) {
			return fmt.Errorf("upstream %s did not establish a subscription to %s", u.cfg.Name, want)
		}
		return nil
	case err := <-ended:
		if err == nil {
			err = errors.New("it closed the stream at once")
		}
		return fmt.Errorf("upstream %s: subscriptions/listen: %w", u.cfg.Name, err)
	case <-t.C:
		return fmt.Errorf("upstream %s did not acknowledge subscriptions/listen within %s", u.cfg.Name, startTimeout)
	}
}

// listenAcknowledged takes a 2026-07-28 upstream's
// notifications/subscriptions/acknowledged for the waiting listen.
func (u *upstream) listenAcknowledged(fields map[string]any) {
	var ack struct {
		Notifications struct {
			ResourceSubscriptions []string `json:"resourceSubscriptions"`
		} `json:"notifications"`
	}
	raw, err := json.Marshal(fields)
	if err != nil || json.Unmarshal(raw, &ack) != nil {
		return
	}
	u.listen.mu.Lock()
	acks := u.listen.acks
	u.listen.mu.Unlock()
	select {
	case acks <- ack.Notifications.ResourceSubscriptions:
	default:
	}
}
