package httpguard

import (
	"crypto/rand"
	"errors"
	"sync"
)

// Sessions is the registry of live MCP sessions (MCP 2025-11-25,
// "Session Management"). It is mcp-go's SessionIdManager for the
// streamable HTTP server: an id exists from initialize until DELETE or
// until the idle sweeper (server.WithSessionIdleTTL) terminates it.
//
// Unlike mcp-go's InsecureStatefulSessionIdManager it remembers nothing
// about ended sessions: an unknown id and an ended one both get 404, so
// keeping a set of terminated ids would only grow memory forever.
type Sessions struct {
	mu   sync.Mutex
	live map[string]struct{}
}

// NewSessions returns an empty registry.
func NewSessions() *Sessions { return &Sessions{live: map[string]struct{}{}} }

// idPrefix is mcp-go's, so ids look the same as before.
const idPrefix = "mcp-session-"

// Generate registers a new session id: 128 random bits in base32, visible
// ASCII as the specification requires.
func (s *Sessions) Generate() string {
	id := idPrefix + rand.Text()
	s.mu.Lock()
	s.live[id] = struct{}{}
	s.mu.Unlock()
	return id
}

var errUnknownSession = errors.New("unknown or ended session")

// Validate reports an error for an id that is not live (mcp-go answers
// 404).
func (s *Sessions) Validate(id string) (isTerminated bool, err error) {
	if !s.Has(id) {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends a session; ending an unknown one is not an error (the
// guard answers DELETE of an unknown session with 404 before mcp-go sees
// it).
func (s *Sessions) Terminate(id string) (isNotAllowed bool, err error) {
	s.mu.Lock()
	delete(s.live, id)
	if len(s.live) == 0 {
		s.live = map[string]struct{}{} // a Go map never shrinks: drop a grown one
	}
	s.mu.Unlock()
	return false, nil
}

// Has reports whether id is a live session.
func (s *Sessions) Has(id string) bool {
	s.mu.Lock()
	_, ok := s.live[id]
	s.mu.Unlock()
	return ok
}

// Len is the number of live sessions.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}
