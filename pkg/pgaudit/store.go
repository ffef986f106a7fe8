// Package pgaudit is the audit log's append path on PostgreSQL
// (pkg/pgstate), for a fleet of replicas writing one log. The formats and
// the Merkle tree are pkg/audit's (RFC 6962 leaves and stored hashes,
// C2SP tlog-checkpoint signed notes), stored as pkg/auditlog stores them
// in SQLite.
//
// # Guarantees
//
//   - Appends from every process are serialised: each commit locks the one
//     audit_tree_state row (SELECT ... FOR UPDATE) and takes the next
//     sequence number from the size stored there, so sequence numbers are
//     contiguous across writers, with no gaps and no duplicates.
//   - Group commit: the appends queued in one process while it waits for
//     the lock share one transaction and one checkpoint signature.
//   - A writer signs only roots it computed: it keeps the tree's frontier
//     (audit.Frontier) in memory. When another replica appended meanwhile,
//     it reads the new entries' leaf hashes, extends its frontier, and
//     accepts the longer tree only if the result equals the root of the
//     checkpoint stored with it, signed by a trusted key. Anything else
//     (fewer entries than it wrote, a root that does not match) refuses
//     every later append.
//   - Fail closed: Append returns a sequence number only after PostgreSQL
//     acknowledged the commit; a database that cannot be reached makes it
//     return an error, within Options.CommitTimeout.
package pgaudit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
)

// Options configure a Store.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxBatch bounds how many appends share one transaction (512).
	MaxBatch int
	// CommitTimeout bounds one commit, so that an unreachable database
	// fails appends instead of holding them (10s).
	CommitTimeout time.Duration
	// Verifiers are the keys whose checkpoints this writer accepts from
	// other replicas; nil: only its own key's.
	Verifiers note.Verifiers
	// Metrics, when set, time commits and count their entries.
	Metrics *metrics.Metrics
}

// Stats count what a Store committed.
type Stats struct {
	Commits int64 // transactions that committed entries
	Entries int64 // entries in them
}

// Store appends to the audit log in a PostgreSQL state database.
type Store struct {
	db        *pgstate.DB
	origin    string
	signer    note.Signer
	verifiers note.Verifiers
	opts      Options

	appends chan *pending
	done    chan struct{}
	closing sync.RWMutex
	closed  bool
	wg      sync.WaitGroup

	// tree and note are the verified tree this writer may extend and its
	// checkpoint; only the committer goroutine touches them after Open.
	tree audit.Frontier
	note []byte

	commits, entries atomic.Int64

	tamperedMu sync.Mutex
	tampered   error
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log is closed")

// Open opens the audit log of db for appending: key signs checkpoints
// under origin (auditlog.Origin of the identity). It checks, before the
// first append, that the stored tree reproduces the latest signed
// checkpoint.
func Open(ctx context.Context, db *pgstate.DB, origin string, key ed25519.PrivateKey, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 10 * time.Second
	}
	signer, err := audit.NewSigner(origin, key)
	if err != nil {
		return nil, fmt.Errorf("audit log signer: %w", err)
	}
	verifiers := opts.Verifiers
	if verifiers == nil {
		v, err := audit.NewVerifier(origin, key.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("audit log verifier: %w", err)
		}
		verifiers = note.VerifierList(v)
	}
	s := &Store{db: db, origin: origin, signer: signer, verifiers: verifiers, opts: opts}
	if err := s.checkOrigin(ctx); err != nil {
		return nil, err
	}
	if err := s.openTree(ctx); err != nil {
		return nil, err
	}
	s.appends = make(chan *pending, 1024)
	s.done = make(chan struct{})
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// checkOrigin records the log's origin on first use and refuses a log
// that belongs to another identity.
func (s *Store) checkOrigin(ctx context.Context) error {
	var got string
	err := s.db.Pool.QueryRow(ctx, `WITH ins AS (
		INSERT INTO meta(key, value) VALUES ('audit.origin', $1) ON CONFLICT (key) DO NOTHING RETURNING value
	) SELECT value FROM ins UNION ALL SELECT value FROM meta WHERE key = 'audit.origin' LIMIT 1`, s.origin).Scan(&got)
	if err != nil {
		return fmt.Errorf("audit log in %s: reading its origin: %w", s.db.Name, err)
	}
	if got != s.origin {
		return fmt.Errorf("the audit log in %s belongs to %s, not to %s", s.db.Name, got, s.origin)
	}
	return nil
}

// Origin returns the log's origin line.
func (s *Store) Origin() string { return s.origin }

// Stats returns what this Store committed so far.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Entries: s.entries.Load()}
}

// Append adds e (and the follow-up entries its hook returns; hook may be
// nil) to the log and returns e with its sequence number, once the
// transaction holding it committed. A zero Timestamp is set to now.
// Concurrent calls share a transaction. An error means the entry is not
// acknowledged: the caller must refuse what it was recording (it may
// still be in the log if the commit's acknowledgement was lost).
func (s *Store) Append(ctx context.Context, e audit.Entry, hook Hook) (audit.Entry, error) {
	if err := s.refusing(); err != nil {
		return audit.Entry{}, err
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = s.opts.Now()
	}
	p := &pending{ctx: ctx, entry: e, hook: hook, done: make(chan result, 1)}
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return audit.Entry{}, ErrClosed
	}
	select {
	case s.appends <- p:
		s.closing.RUnlock()
	case <-ctx.Done():
		s.closing.RUnlock()
		return audit.Entry{}, ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the caller must
	// learn whether the entry was committed.
	r := <-p.done
	return r.entry, r.err
}

// Close stops the committer after the appends already queued.
func (s *Store) Close() error {
	s.closing.Lock()
	already := s.closed
	s.closed = true
	s.closing.Unlock()
	if !already {
		close(s.done)
		s.wg.Wait()
	}
	return nil
}

func (s *Store) refusing() error {
	s.tamperedMu.Lock()
	defer s.tamperedMu.Unlock()
	return s.tampered
}

// refuse latches err: every later append fails with it.
func (s *Store) refuse(err error) error {
	s.tamperedMu.Lock()
	defer s.tamperedMu.Unlock()
	if s.tampered == nil {
		s.tampered = fmt.Errorf("the audit log in %s cannot be appended to, so nothing is accepted: %w (run `agentmesh audit verify`)", s.db.Name, err)
	}
	return s.tampered
}

// QueueDepth is the number of appends waiting for the committer.
func (s *Store) QueueDepth() int { return len(s.appends) }

// Verifiers returns the keys whose checkpoints this writer accepts.
func (s *Store) Verifiers() note.Verifiers { return s.verifiers }

// Failure is why the log refuses every append (a tree that does not
// reproduce its signed root), or nil; a database that is merely down is
// not a failure: appends resume when it is back.
func (s *Store) Failure() error { return s.refusing() }
