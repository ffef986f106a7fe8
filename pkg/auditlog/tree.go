package auditlog

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// writerTree is what a writer knows to be true of the log: the frontier of
// the tree it may extend (verified against a signed root), the latest
// signed checkpoint, and when it last looked at what other processes
// committed.
type writerTree struct {
	f    audit.Frontier
	note []byte
	// dataVersion is SQLite's PRAGMA data_version on the writer
	// connection when the tree was last checked: it changes only when
	// another connection commits, so an unchanged value means nothing
	// but this process wrote since (https://sqlite.org/pragma.html#pragma_data_version).
	dataVersion int64
	// witnessMissing: there was no witness when the log was opened.
	witnessMissing bool
	// token is the database's change token after this writer's last
	// commit, when that commit was the only change (state.Commit.Solo):
	// while the database still shows it, nothing else was committed and
	// catchUp has nothing to read.
	token      state.ChangeToken
	tokenValid bool
}

// committed notes the change token this writer's commit left.
func (t *writerTree) committed(c state.Commit) {
	t.token, t.tokenValid = c.Token, c.Solo
}

// TamperedError is why a log refuses appends: the stored log is not a
// consistent extension of what was signed and witnessed.
type TamperedError struct {
	Path    string
	Problem *audit.VerifyError
}

func (e *TamperedError) Error() string {
	return fmt.Sprintf("the audit log in %s cannot be appended to, so nothing is accepted: %s: %s (run `agentmesh audit verify`)",
		e.Path, e.Problem.Kind, e.Problem.Detail)
}

// Unwrap returns the problem, so errors.Is finds its audit.Kind.
func (e *TamperedError) Unwrap() error { return e.Problem }

// ErrTampered matches every *TamperedError (errors.Is).
var ErrTampered = errors.New("audit log tampered with")

// Is makes errors.Is(err, ErrTampered) true.
func (e *TamperedError) Is(target error) bool { return target == ErrTampered }

// openTree checks, before the first append, that the stored tree at the
// latest checkpoint's size reproduces the signed root, that the
// checkpoint extends the witness, and that the entries are exactly those
// signed; it returns the verified frontier.
func (l *Log) openTree(ctx context.Context) (*writerTree, error) {
	var in integrity
	var note []byte
	var missing bool
	err := l.readWithWitness(ctx, func(v *view, w *witnessCopy) error {
		in = l.assess(v, w, checks{storedTree: true})
		note, missing = v.note, w == nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	if in.problem != nil {
		return nil, &TamperedError{Path: l.db.Path, Problem: in.problem}
	}
	return &writerTree{f: in.frontier, note: note, dataVersion: -1, witnessMissing: missing}, nil
}

// refusing returns why appends are refused, if they are.
func (l *Log) refusing() error {
	l.tamperedMu.Lock()
	defer l.tamperedMu.Unlock()
	return l.tampered
}

func (l *Log) refuse(p *audit.VerifyError) error {
	err := &TamperedError{Path: l.db.Path, Problem: p}
	l.tamperedMu.Lock()
	if l.tampered == nil {
		l.tampered = err
	}
	l.tamperedMu.Unlock()
	return err
}

// catchUp runs at the start of every append transaction. If another
// connection committed since the writer last looked, it re-reads the log:
// the same tree must still be stored under the same checkpoint, or the log
// must have grown under a newer checkpoint signed with the identity's key
// that extends the writer's tree (a consistency proof from its root).
// Anything else is tampering and latches the refusal; a database error
// fails this append only.
func (l *Log) catchUp(ctx context.Context, tx *sql.Tx) error {
	t := l.tree
	if t.tokenValid {
		// Under the write lock nobody commits: a token unchanged since
		// this writer's last commit means there is nothing to read.
		if now, ok := l.db.ChangeToken(); ok && now == t.token {
			return nil
		}
		t.tokenValid = false
	}
	var dv int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&dv); err != nil {
		return fmt.Errorf("reading the database's change counter: %w", err)
	}
	if dv == t.dataVersion {
		return nil
	}
	v := &view{ctx: ctx, tx: tx}
	if err := v.load(l); err != nil {
		return err
	}
	n := t.f.Size()
	switch {
	case v.size == n && bytes.Equal(v.note, t.note):
		g, err := audit.FrontierAt(n, v.hashes())
		if err != nil {
			return l.refuse(problemf(audit.NoSeq, audit.KindStoredHashChanged, "the stored tree at tree size %d is unreadable: %v", n, err))
		}
		if !g.Equal(&t.f) {
			return l.refuse(problemf(audit.NoSeq, audit.KindStoredHashChanged,
				"the stored tree no longer reproduces the signed root of tree size %d: entries or their stored hashes were rewritten", n))
		}
	case v.size > n && v.hasCP:
		cp, err := v.checkpoint()
		if err != nil {
			return l.refuse(asVerifyError(err))
		}
		if cp.Size != v.size {
			return l.refuse(problemf(min(cp.Size, v.size), audit.KindContentChanged,
				"the log grew to %d entries under a checkpoint of tree size %d: entries were added outside agentmesh", v.size, cp.Size))
		}
		mine := audit.Checkpoint{Origin: l.origin, Size: n, Root: t.f.Root()}
		if err := consistent(mine, cp, v); err != nil {
			return l.refuse(problemf(audit.NoSeq, audit.KindFork,
				"the checkpoint of tree size %d another process signed is not an extension of this writer's tree (size %d, root %s): %v", cp.Size, n, mine.Root, err))
		}
		g, err := audit.FrontierAt(cp.Size, v.hashes())
		if err != nil || g.Root() != cp.Root {
			return l.refuse(problemf(audit.NoSeq, audit.KindStoredHashChanged,
				"the stored tree does not reproduce the signed root of tree size %d", cp.Size))
		}
		t.f, t.note = g, v.note
	case v.size < n:
		return l.refuse(problemf(v.size, audit.KindRollback,
			"this writer appended up to tree size %d, but the log now has %d entries: entries were deleted or the database rolled back", n, v.size))
	default:
		return l.refuse(problemf(audit.NoSeq, audit.KindFork,
			"the latest checkpoint (tree size %d) was replaced under a running writer: the log's signed state was rewritten", n))
	}
	t.dataVersion = dv
	return nil
}
