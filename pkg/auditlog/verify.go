package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Report describes a verification.
type Report struct {
	Mode string `json:"mode"` // full | incremental
	// Size is the number of entries; Hashed how many this run hashed.
	Size   int64  `json:"size"`
	Hashed int64  `json:"hashed"`
	Root   string `json:"root"`
	// Since is where an incremental run started (the last full run's size).
	Since       int64              `json:"since,omitempty"`
	Checkpoint  *CheckpointView    `json:"checkpoint,omitempty"`
	Witness     *CheckpointView    `json:"witness,omitempty"`
	WitnessPath string             `json:"witness_path,omitempty"`
	Duration    time.Duration      `json:"duration_ns"`
	Problem     *audit.VerifyError `json:"-"`
}

// CheckpointView is a checkpoint for reports.
type CheckpointView struct {
	Size   int64     `json:"size"`
	Root   string    `json:"root"`
	Time   time.Time `json:"time"`
	Origin string    `json:"origin"`
}

func viewOf(c audit.Checkpoint) *CheckpointView {
	return &CheckpointView{Size: c.Size, Root: c.Root.String(), Time: c.Time, Origin: c.Origin}
}

// VerifyOptions choose how much to check.
type VerifyOptions struct {
	// Incremental hashes only the entries added since the last successful
	// full verification; everything else (signatures, witness, tree) is
	// still checked.
	Incremental bool
}

// Verify checks the whole log offline: every entry decodes canonically and
// sits at its sequence number, the indexed columns agree with the entries,
// the stored tree and the entries hash to the signed checkpoint's root, the
// checkpoint is signed by a key of the identity's history, and the log is a
// consistent extension of the witness copy (no rollback). The first problem
// is returned as an *audit.VerifyError. The outcome is recorded in the
// database; a full success is where --incremental later starts.
func (l *Log) Verify(ctx context.Context, opts VerifyOptions) (Report, error) {
	start := time.Now()
	rep, err := l.verify(ctx, opts)
	rep.Duration = time.Since(start)
	var verr *audit.VerifyError
	if errors.As(err, &verr) {
		rep.Problem = verr
	}
	if rerr := l.recordVerification(ctx, rep, err); rerr != nil && err == nil {
		err = rerr
	}
	return rep, err
}

func (l *Log) verify(ctx context.Context, opts VerifyOptions) (Report, error) {
	rep := Report{Mode: "full"}
	size, err := l.Size(ctx)
	if err != nil {
		return rep, err
	}
	rep.Size = size
	var cps []audit.Checkpoint
	_, cp, err := l.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ErrNoCheckpoint):
		if size > 0 {
			return rep, &audit.VerifyError{Seq: 0, Kind: audit.KindContentChanged, Detail: fmt.Sprintf("%d entries but no signed checkpoint", size)}
		}
	case err != nil:
		return rep, err
	default:
		rep.Checkpoint = viewOf(cp)
		cps = append(cps, cp)
	}
	wcp, err := l.witnessCheckpoint(&rep)
	if err != nil {
		return rep, err
	}
	if wcp != nil {
		cps = append(cps, *wcp)
	}
	if rep.Checkpoint != nil && size > cp.Size {
		return rep, &audit.VerifyError{Seq: cp.Size, Kind: audit.KindContentChanged,
			Detail: fmt.Sprintf("entries %d..%d are not covered by the signed checkpoint (tree size %d): they were added outside agentmesh", cp.Size, size-1, cp.Size)}
	}
	if opts.Incremental {
		if base, root, ok, err := l.lastFull(ctx); err != nil {
			return rep, err
		} else if ok && base <= size {
			rep.Mode, rep.Since = "incremental", base
			return l.verifyIncremental(ctx, rep, cps, base, root)
		}
		// No full verification yet: do one.
	}
	hr := hashReader{ctx: ctx, q: l.db.Reader()}
	var cols [5]string
	res, err := audit.VerifyEntries(l.scan(ctx, 0, &cols), audit.VerifyOptions{Checkpoints: cps, Tree: hr, TreeSize: size, Inspect: columnCheck(&cols)})
	if err != nil {
		return rep, err
	}
	rep.Hashed = res.Size
	rep.Root = res.Root.String()
	return rep, nil
}

// witnessCheckpoint opens the witness file, if any.
func (l *Log) witnessCheckpoint(rep *Report) (*audit.Checkpoint, error) {
	if l.opts.WitnessDir == "" {
		return nil, nil
	}
	path := witnessPath(l.opts.WitnessDir, l.origin)
	rep.WitnessPath = path
	note, err := readWitness(path)
	if err != nil || note == nil {
		return nil, err
	}
	w, _, err := audit.OpenCheckpoint(note, l.verifiers)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", path, err)
	}
	if w.Origin != l.origin {
		return nil, fmt.Errorf("witness %s is for log %q, not %q", path, w.Origin, l.origin)
	}
	rep.Witness = viewOf(w)
	return &w, nil
}

// scan yields stored entries from seq from on. Each row's indexed columns
// are left in *cols for the caller's check (see columnCheck) while the
// entry is being verified.
func (l *Log) scan(ctx context.Context, from int64, cols *[5]string) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		rows, err := l.db.Reader().QueryContext(ctx, `SELECT seq, entry, ts, agent, action, tool, result FROM audit_entries WHERE seq >= ? ORDER BY seq`, from)
		if err != nil {
			yield(nil, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var raw []byte
			if err := rows.Scan(&seq, &raw, &cols[0], &cols[1], &cols[2], &cols[3], &cols[4]); err != nil {
				yield(nil, err)
				return
			}
			if !yield(raw, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// columnCheck compares the current row's indexed columns with its entry.
func columnCheck(cols *[5]string) func(audit.Entry) error {
	return func(e audit.Entry) error { return checkColumns(int64(e.Seq), e, *cols) }
}

func checkColumns(seq int64, e audit.Entry, cols [5]string) error {
	want := [5]string{audit.FormatTimestamp(e.Timestamp), e.Agent, string(e.Action), e.Tool, string(e.Result)}
	names := [5]string{"ts", "agent", "action", "tool", "result"}
	for i := range cols {
		if cols[i] != want[i] {
			return &audit.VerifyError{Seq: seq, Kind: audit.KindContentChanged,
				Detail: fmt.Sprintf("the indexed column %s says %q but the entry says %q", names[i], cols[i], want[i])}
		}
	}
	return nil
}

func (l *Log) verifyIncremental(ctx context.Context, rep Report, cps []audit.Checkpoint, base int64, baseRoot tlog.Hash) (Report, error) {
	hr := hashReader{ctx: ctx, q: l.db.Reader()}
	root, err := audit.TreeRoot(base, hr)
	if err != nil {
		return rep, err
	}
	if root != baseRoot {
		return rep, &audit.VerifyError{Seq: audit.NoSeq, Kind: audit.KindFork,
			Detail: fmt.Sprintf("the tree's root at size %d changed since the last full verification: run a full `agentmesh audit verify`", base)}
	}
	seq := base
	var cols [5]string
	leaves := &leafHashes{r: hr, size: rep.Size}
	for raw, err := range l.scan(ctx, base, &cols) {
		if err != nil {
			return rep, unwrapVerify(err)
		}
		e, err := audit.Unmarshal(raw)
		if err != nil {
			return rep, &audit.VerifyError{Seq: seq, Kind: audit.KindContentChanged, Detail: "entry does not decode canonically", Err: err}
		}
		if int64(e.Seq) == seq {
			if err := checkColumns(seq, e, cols); err != nil {
				return rep, err
			}
		}
		if int64(e.Seq) != seq {
			kind := audit.KindMissingEntry
			if int64(e.Seq) < seq {
				kind = audit.KindReordered
			}
			return rep, &audit.VerifyError{Seq: seq, Kind: kind, Detail: fmt.Sprintf("found seq %d at position %d", e.Seq, seq)}
		}
		stored, err := leaves.get(seq)
		if err != nil {
			return rep, err
		}
		if stored != audit.LeafHash(raw) {
			return rep, &audit.VerifyError{Seq: seq, Kind: audit.KindContentChanged, Detail: "the entry's leaf hash differs from the stored tree"}
		}
		seq++
		rep.Hashed++
	}
	if seq != rep.Size {
		return rep, &audit.VerifyError{Seq: seq, Kind: audit.KindMissingEntry, Detail: "the log ends early"}
	}
	for _, c := range cps {
		if err := audit.VerifyWitness(c, rep.Size, hr); err != nil {
			return rep, err
		}
	}
	top, err := audit.TreeRoot(rep.Size, hr)
	if err != nil {
		return rep, err
	}
	rep.Root = top.String()
	return rep, nil
}

func unwrapVerify(err error) error {
	var verr *audit.VerifyError
	if errors.As(err, &verr) {
		return verr
	}
	return err
}

// lastFull returns the size and root of the last successful full run.
func (l *Log) lastFull(ctx context.Context) (int64, tlog.Hash, bool, error) {
	var size int64
	var root []byte
	err := l.db.Reader().QueryRowContext(ctx, `SELECT size, root FROM audit_verifications WHERE mode = 'full' AND ok = 1 ORDER BY id DESC LIMIT 1`).Scan(&size, &root)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, tlog.Hash{}, false, nil
	}
	if err != nil {
		return 0, tlog.Hash{}, false, err
	}
	var h tlog.Hash
	if len(root) != len(h) {
		return 0, h, false, nil
	}
	copy(h[:], root)
	return size, h, true, nil
}

func (l *Log) recordVerification(ctx context.Context, rep Report, verr error) error {
	var root []byte
	if verr == nil && rep.Root != "" {
		h, err := tlog.ParseHash(rep.Root)
		if err == nil {
			root = h[:]
		}
	}
	detail := "ok"
	if verr != nil {
		detail = verr.Error()
	}
	return l.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_verifications(at, mode, size, root, ok, detail) VALUES (?, ?, ?, ?, ?, ?)`,
			audit.FormatTimestamp(l.opts.Now()), rep.Mode, rep.Size, root, verr == nil, detail)
		return err
	})
}

// LastVerification is the most recent recorded verification.
type LastVerification struct {
	At     time.Time `json:"at"`
	Mode   string    `json:"mode"`
	Size   int64     `json:"size"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
}

// LastVerification returns the most recent verification, or nil if none.
func (l *Log) LastVerification(ctx context.Context) (*LastVerification, error) {
	var v LastVerification
	var at string
	err := l.db.Reader().QueryRowContext(ctx, `SELECT at, mode, size, ok, detail FROM audit_verifications ORDER BY id DESC LIMIT 1`).Scan(&at, &v.Mode, &v.Size, &v.OK, &v.Detail)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v.At, _ = audit.ParseTimestamp(at)
	return &v, nil
}

// leafHashes reads the stored leaf hashes of consecutive leaves with range
// scans of the stored-hash table, a chunk at a time.
type leafHashes struct {
	r          hashReader
	size       int64
	start, end int64 // leaves held
	base       int64 // stored-hash index of buf[0]
	buf        []tlog.Hash
}

const leafChunk = 4096

func (lh *leafHashes) get(leaf int64) (tlog.Hash, error) {
	if leaf < lh.start || leaf >= lh.end {
		end := min(leaf+leafChunk, lh.size)
		if end <= leaf {
			return tlog.Hash{}, fmt.Errorf("leaf %d is beyond the stored tree (%d leaves)", leaf, lh.size)
		}
		first := tlog.StoredHashIndex(0, leaf)
		last := tlog.StoredHashIndex(0, end-1) + 1
		buf, err := lh.r.readRange(first, last-first)
		if err != nil {
			return tlog.Hash{}, err
		}
		lh.start, lh.end, lh.base, lh.buf = leaf, end, first, buf
	}
	return lh.buf[tlog.StoredHashIndex(0, leaf)-lh.base], nil
}
