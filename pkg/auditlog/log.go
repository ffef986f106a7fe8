// Package auditlog is agentmesh's audit log in the state database: durable,
// group-committed appends shared by every process, signed checkpoints, the
// witness copy kept outside the state directory, listing, export, proofs
// and offline verification. The formats and the Merkle tree are pkg/audit's
// (RFC 6962, C2SP tlog-checkpoint, signed note); this package stores them.
//
// Every append runs in one SQLite BEGIN IMMEDIATE transaction, so appends
// from several processes are serialised and sequence numbers stay
// contiguous; appends made concurrently inside one process share a
// transaction and a checkpoint signature (group commit). An append returns
// only after its transaction committed durably (PRAGMA synchronous=FULL by
// default), and a failed append is an error the caller must act on: the
// serve pipeline refuses the call.
//
// # What the writer signs
//
// Whoever can write the state database but holds no key must not be able to
// get a forgery signed. So a writer signs only roots it computed itself: it
// keeps the tree's frontier (pkg/audit.Frontier) in memory, checked at Open
// against the latest signed checkpoint and the witness, and extends it with
// the leaves it appends. When another process appended meanwhile, the
// writer adopts the longer tree only after a consistency proof (RFC 6962
// §2.1.2) from its own root to the new signed one. Anything else (a stored
// tree that no longer reproduces the signed root, a checkpoint older than
// the witness, an empty database where a witness exists) refuses every
// append until an operator looks (`agentmesh audit verify`).
//
// # Readers
//
// Verify, Health, Prove, List and export each read inside one SQLite read
// transaction and bound every scan by the size they report, so a writer
// committing meanwhile can never make a healthy log look tampered with.
package auditlog

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// Options configure a Log.
type Options struct {
	// WitnessDir holds witness files; empty disables the witness.
	WitnessDir string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxBatch bounds how many appends share one transaction.
	MaxBatch int
	// OnWitnessError is told when the witness cannot be written (a warning,
	// never a refused call).
	OnWitnessError func(error)
	// BatchWindow > 0 is the relaxed mode used by Enqueue: the committer
	// collects entries for up to this long before committing them
	// together. Append still waits for its commit.
	BatchWindow time.Duration
	// OnEnqueuedError is told when a commit of enqueued entries fails:
	// those entries are lost, and every later Enqueue fails.
	OnEnqueuedError func(error)
	// Witnesses are external C2SP tlog-witness servers a writer submits
	// its checkpoints to (audit.witnesses).
	Witnesses []ExternalWitness
	// RecordKey, when set on a reader, signs the records of verifications
	// (the identity key): --incremental starts only from a full
	// verification whose record verifies.
	RecordKey ed25519.PrivateKey
	// Metrics, when set, time commits and count their entries; the log's
	// queue depth and witness lag are read from QueueDepth and WitnessLag.
	Metrics *metrics.Metrics
}

// Log is an open audit log.
type Log struct {
	db        *state.DB
	origin    string
	doc       *identity.Document
	verifiers note.Verifiers
	signer    note.Signer // nil for read-only use
	// recordSigner signs verification records (Options.RecordKey).
	recordSigner note.Signer
	opts         Options

	appends   chan *pending
	done      chan struct{}
	closeOnce sync.Once
	closing   sync.RWMutex
	closed    bool
	wg        sync.WaitGroup
	witness   *witnessWriter

	// broken is why a commit of enqueued (not waited-for) entries failed;
	// once set, Enqueue refuses (fail closed from then on).
	brokenMu sync.Mutex
	broken   error

	// tree is the writer's verified view of what it may extend; only the
	// committer goroutine touches it after Open.
	tree *writerTree
	// submitters send checkpoints to external witnesses.
	submitters []*submitter
	// tampered is why the log refuses every append (latched).
	tamperedMu sync.Mutex
	tampered   error

	// queued counts enqueued entries not yet committed; committedSize and
	// witnessedSize are the tree sizes last committed and last written to
	// the witness (metrics).
	queued        atomic.Int64
	committedSize atomic.Int64
	witnessedSize atomic.Int64
}

// Origin names a log: "agentmesh/<DID>/<first 16 hex digits of the
// SHA-256 of the identity's first public key>". It is fixed when the log is
// created and survives key rotation, so the witness file keeps its name.
func Origin(doc *identity.Document) (string, error) {
	pub, err := doc.Keys[0].PublicKey()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(pub)
	return "agentmesh/" + doc.ID + "/" + hex.EncodeToString(sum[:8]), nil
}

// Open opens the log for appending: id's current key signs checkpoints.
func Open(ctx context.Context, db *state.DB, id *identity.Identity, opts Options) (*Log, error) {
	l, err := open(ctx, db, &id.Doc, opts)
	if err != nil {
		return nil, err
	}
	l.signer, err = audit.NewSigner(l.origin, id.Key)
	if err != nil {
		return nil, fmt.Errorf("audit log signer: %w", err)
	}
	if l.tree, err = l.openTree(ctx); err != nil {
		return nil, err
	}
	if opts.WitnessDir != "" {
		l.witness = newWitnessWriter(l, l.tree.witnessMissing)
		l.committedSize.Store(l.tree.f.Size())
		if w := l.readWitness(); w != nil && w.err == nil {
			l.witnessed(w.cp.Size)
		}
	}
	l.appends = make(chan *pending, 1024)
	l.done = make(chan struct{})
	if err := l.startSubmitters(opts.Witnesses); err != nil {
		close(l.done)
		l.wg.Wait()
		return nil, err
	}
	l.wg.Add(1)
	go l.commitLoop()
	return l, nil
}

// OpenReader opens the log for reading and verification only: it needs the
// public identity document, never a private key.
func OpenReader(ctx context.Context, db *state.DB, doc *identity.Document, opts Options) (*Log, error) {
	return open(ctx, db, doc, opts)
}

func open(ctx context.Context, db *state.DB, doc *identity.Document, opts Options) (*Log, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	origin, err := logOrigin(ctx, db, doc)
	if err != nil {
		return nil, err
	}
	l := &Log{db: db, origin: origin, doc: doc, opts: opts}
	if l.verifiers, err = Verifiers(doc); err != nil {
		return nil, err
	}
	if opts.RecordKey != nil {
		if l.recordSigner, err = audit.NewSigner(origin, opts.RecordKey); err != nil {
			return nil, fmt.Errorf("audit verification signer: %w", err)
		}
	}
	return l, nil
}

// VerifierKeys returns the signed-note verifier keys of every key in the
// identity's history, current first, under the log's origin: what an
// auditor needs, and all, to check a checkpoint or an inclusion proof
// (`audit verify --proof FILE --key VKEY`).
func VerifierKeys(doc *identity.Document) ([]string, error) {
	origin, err := Origin(doc)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := len(doc.Keys) - 1; i >= 0; i-- {
		pub, err := doc.Keys[i].PublicKey()
		if err != nil {
			return nil, err
		}
		vk, err := audit.VerifierKey(origin, ed25519.PublicKey(pub))
		if err != nil {
			return nil, fmt.Errorf("audit log verifier for key %s: %w", doc.Keys[i].Fingerprint, err)
		}
		out = append(out, vk)
	}
	return out, nil
}

// Verifiers returns the note verifiers of every key in the identity's
// history, under the log's origin.
func Verifiers(doc *identity.Document) (note.Verifiers, error) {
	keys, err := VerifierKeys(doc)
	if err != nil {
		return nil, err
	}
	vs := make([]note.Verifier, len(keys))
	for i, k := range keys {
		if vs[i], err = note.NewVerifier(k); err != nil {
			return nil, err
		}
	}
	return note.VerifierList(vs...), nil
}

// logOrigin returns the origin recorded for this database, recording it on
// first use.
func logOrigin(ctx context.Context, db *state.DB, doc *identity.Document) (string, error) {
	want, err := Origin(doc)
	if err != nil {
		return "", err
	}
	var got string
	err = db.Reader().QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'audit.origin'`).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		err = db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO meta(key, value) VALUES ('audit.origin', ?)`, want)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("recording the audit log origin: %w", err)
		}
		err = db.Reader().QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'audit.origin'`).Scan(&got)
	}
	if err != nil {
		return "", fmt.Errorf("reading the audit log origin: %w", err)
	}
	if got != want {
		return "", fmt.Errorf("the audit log in %s belongs to %s, not to the current identity (%s): it was replaced with --force; move the state directory's agentmesh.db aside to start a new log", db.Path, got, want)
	}
	return got, nil
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.origin }

// Verifiers returns the note verifiers of every key in the identity's
// history.
func (l *Log) Verifiers() note.Verifiers { return l.verifiers }

// Close stops the committer after pending appends and writes the witness.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.closing.Lock()
		l.closed = true
		l.closing.Unlock()
		if l.done != nil {
			close(l.done)
			l.wg.Wait()
		}
		if l.witness != nil {
			l.witness.close()
		}
	})
	return nil
}
