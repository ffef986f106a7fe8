package mcpserver

import (
	"net/http"
	"sync"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// sessionOwners binds each MCP session to the caller that created it
// (MCP 2025-11-25, "Security Best Practices: Session Hijacking": a session
// ID is not authentication). A request that names another caller's
// session gets 404, exactly as an unknown session does, so session IDs
// cannot be probed, and a stolen ID is useless without its owner's
// credentials.
type sessionOwners struct {
	next   http.Handler
	mu     sync.Mutex
	owners map[string]string // Mcp-Session-Id → caller ID
}

func newSessionOwners(next http.Handler) *sessionOwners {
	return &sessionOwners{next: next, owners: map[string]string{}}
}

// forget drops a session that ended (DELETE, idle eviction, shutdown).
func (s *sessionOwners) forget(session string) {
	s.mu.Lock()
	delete(s.owners, session)
	s.mu.Unlock()
}

// count is the number of sessions with an owner, for tests.
func (s *sessionOwners) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owners)
}

func (s *sessionOwners) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who := ""
	if c := caller.FromContext(r.Context()); c != nil {
		who = c.ID
	}
	if session := r.Header.Get("Mcp-Session-Id"); session != "" {
		s.mu.Lock()
		owner, known := s.owners[session]
		s.mu.Unlock()
		if known && owner != who {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		s.next.ServeHTTP(w, r)
		if r.Method == http.MethodDelete {
			s.forget(session)
		}
		return
	}
	s.next.ServeHTTP(&ownerRecorder{ResponseWriter: w, owners: s, who: who}, r)
}

// ownerRecorder notes the session an initialize response creates.
type ownerRecorder struct {
	http.ResponseWriter
	owners *sessionOwners
	who    string
	done   bool
}

func (o *ownerRecorder) note() {
	if o.done {
		return
	}
	o.done = true
	if id := o.Header().Get("Mcp-Session-Id"); id != "" {
		o.owners.mu.Lock()
		o.owners.owners[id] = o.who
		o.owners.mu.Unlock()
	}
}

func (o *ownerRecorder) WriteHeader(code int) {
	o.note()
	o.ResponseWriter.WriteHeader(code)
}

func (o *ownerRecorder) Write(b []byte) (int, error) {
	o.note()
	return o.ResponseWriter.Write(b)
}

func (o *ownerRecorder) Flush() {
	o.note()
	if f, ok := o.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (o *ownerRecorder) Unwrap() http.ResponseWriter { return o.ResponseWriter }
