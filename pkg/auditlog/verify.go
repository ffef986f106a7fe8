package auditlog

import (
	"context"
	"errors"
	"fmt"
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
	Since int64 `json:"since,omitempty"`
	// FullBecause says why --incremental ran a full verification.
	FullBecause string          `json:"full_because,omitempty"`
	Checkpoint  *CheckpointView `json:"checkpoint,omitempty"`
	Witness     *CheckpointView `json:"witness,omitempty"`
	WitnessPath string          `json:"witness_path,omitempty"`
	// Cosigned are the external witnesses' cosigned checkpoints the log
	// was checked against (audit verify --witness-key).
	Cosigned []CosignedView     `json:"cosigned,omitempty"`
	Duration time.Duration      `json:"duration_ns"`
	Problem  *audit.VerifyError `json:"-"`
}

// CheckpointView is a checkpoint for reports.
type CheckpointView struct {
	Size   int64     `json:"size"`
	Root   string    `json:"root"`
	Time   time.Time `json:"time"`
	Origin string    `json:"origin"`
}

// CosignedView is a checkpoint an external witness cosigned.
type CosignedView struct {
	Witness string `json:"witness"`
	CheckpointView
}

func viewOf(c audit.Checkpoint) *CheckpointView {
	return &CheckpointView{Size: c.Size, Root: c.Root.String(), Time: c.Time, Origin: c.Origin}
}

// Cosigned is a checkpoint of this log cosigned by an external witness,
// already authenticated (log signature and cosignature) by the caller.
type Cosigned struct {
	Witness    string // the witness's name, for reports
	Checkpoint audit.Checkpoint
}

// VerifyOptions choose how much to check.
type VerifyOptions struct {
	// Incremental hashes only the entries added since the last successful
	// full verification (whose signed record says where it ended and with
	// which root); everything else is still checked: signatures, the
	// checkpoint history, the witness, the stored tree's root at the last
	// verified size and at the checkpoint's, and every stored hash the new
	// leaves add. It cannot clear a failed full verification.
	Incremental bool
	// NoWitness accepts a log that has checkpoints but no witness (a log
	// copied from another machine).
	NoWitness bool
	// Cosigned checkpoints from external witnesses the log must agree
	// with (audit verify --witness-key).
	Cosigned []Cosigned
}

// Verify checks the log offline, in one consistent read: every entry
// decodes canonically and sits at its sequence number, the indexed columns
// agree with the entries, the stored tree and the entries hash to the
// signed checkpoint's root, the checkpoint is signed by a key of the
// identity's history and agrees with the checkpoint history, and the log
// is a consistent extension of the witness copy and of the cosigned
// checkpoints. The first problem is returned as an *audit.VerifyError. The
// outcome is recorded in the database (signed when the log was opened with
// Options.RecordKey); a full success is where --incremental later starts.
func (l *Log) Verify(ctx context.Context, opts VerifyOptions) (Report, error) {
	start := time.Now()
	var rep Report
	var verr error
	err := l.readWithWitness(ctx, func(v *view, w *witnessCopy) error {
		rep, verr = l.verifyView(v, w, opts)
		return nil
	})
	if err == nil {
		err = verr
	}
	rep.Duration = time.Since(start)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		rep.Problem = ve
	}
	if rerr := l.recordVerification(ctx, rep, err); rerr != nil && err == nil {
		err = rerr
	}
	return rep, err
}

func (l *Log) verifyView(v *view, w *witnessCopy, opts VerifyOptions) (Report, error) {
	rep := Report{Mode: "full", Size: v.size, WitnessPath: l.WitnessPath()}
	if w != nil && w.err == nil {
		rep.Witness = viewOf(w.cp)
	}
	in := l.assess(v, w, checks{noWitness: opts.NoWitness})
	if in.cp != nil {
		rep.Checkpoint = viewOf(*in.cp)
	}
	var missingWitness *audit.VerifyError
	if in.problem != nil {
		if in.problem.Kind != audit.KindWitnessMissing {
			return rep, in.problem
		}
		missingWitness = in.problem // said once the rest is checked
	}
	cps := []audit.Checkpoint{}
	if in.cp != nil {
		cps = append(cps, *in.cp)
		if v.size > in.cp.Size {
			return rep, problemf(in.cp.Size, audit.KindContentChanged,
				"entries %d..%d are not covered by the signed checkpoint (tree size %d): they were added outside agentmesh", in.cp.Size, v.size-1, in.cp.Size)
		}
	}
	if w != nil {
		cps = append(cps, w.cp)
	}
	for _, c := range opts.Cosigned {
		rep.Cosigned = append(rep.Cosigned, CosignedView{Witness: c.Witness, CheckpointView: *viewOf(c.Checkpoint)})
		if in.cp != nil && c.Checkpoint.Size == in.cp.Size && c.Checkpoint.Root != in.cp.Root {
			return rep, forkOf(*in.cp, "the state database's latest checkpoint", c.Checkpoint, "the checkpoint witness "+c.Witness+" cosigned")
		}
		if w != nil && c.Checkpoint.Size == w.cp.Size && c.Checkpoint.Root != w.cp.Root {
			return rep, forkOf(w.cp, "the witness "+w.path, c.Checkpoint, "the checkpoint witness "+c.Witness+" cosigned")
		}
		cps = append(cps, c.Checkpoint)
	}
	var err error
	if opts.Incremental {
		rep, err = l.verifyIncremental(v, w, rep, opts)
	} else {
		rep, err = l.verifyFull(v, rep, cps)
	}
	if err == nil && missingWitness != nil {
		return rep, missingWitness
	}
	return rep, err
}

func (l *Log) verifyFull(v *view, rep Report, cps []audit.Checkpoint) (Report, error) {
	rep.Mode = "full"
	tree, stop := l.verifyHashes(v, 0)
	defer stop()
	res, err := audit.VerifyDecoded(l.decodedEntries(v, 0), audit.VerifyOptions{
		Checkpoints: cps, Tree: tree, TreeSize: v.size, Locate: l.locator(v),
	})
	if err != nil {
		return rep, unwrapVerify(err)
	}
	rep.Hashed = res.Size
	rep.Root = res.Root.String()
	return rep, nil
}

func (l *Log) verifyIncremental(v *view, w *witnessCopy, rep Report, opts VerifyOptions) (Report, error) {
	last, err := l.lastFull(v)
	if err != nil {
		return rep, err
	}
	switch {
	case last != nil && !last.OK:
		rep.Mode = "incremental"
		return rep, problemf(audit.NoSeq, last.kind(),
			"the last full verification (%s) failed: %s; --incremental cannot clear it, run a full `agentmesh audit verify`",
			audit.FormatTimestamp(last.At), last.Detail)
	case last == nil:
		rep.FullBecause = "no full verification yet"
	case !last.signed:
		rep.FullBecause = "the last full verification's record is not signed by the identity key (" + last.why + ")"
	case last.Size > v.size:
		rep.Mode = "incremental"
		return rep, problemf(v.size, audit.KindRollback,
			"the last full verification covered %d entries, but the log now has %d: entries were deleted or the log rolled back", last.Size, v.size)
	}
	cps := []audit.Checkpoint{}
	if rep.Checkpoint != nil {
		cp, _ := v.checkpoint()
		cps = append(cps, cp)
	}
	if rep.FullBecause != "" {
		if w != nil {
			cps = append(cps, w.cp)
		}
		for _, c := range opts.Cosigned {
			cps = append(cps, c.Checkpoint)
		}
		return l.verifyFull(v, rep, cps)
	}
	rep.Mode, rep.Since = "incremental", last.Size
	in := l.assess(v, w, checks{storedTree: true, noWitness: true})
	if in.problem != nil {
		return rep, in.problem
	}
	start, err := audit.FrontierAt(last.Size, v.hashes())
	if err != nil || start.Root() != last.Root {
		return rep, problemf(audit.NoSeq, audit.KindStoredHashChanged,
			"the stored tree's root at tree size %d, where the last full verification ended, is no longer the root it verified and signed: entries 0..%d or their stored hashes were rewritten since; run a full `agentmesh audit verify`",
			last.Size, last.Size-1)
	}
	for _, c := range opts.Cosigned {
		if c.Checkpoint.Size >= last.Size {
			cps = append(cps, c.Checkpoint)
		} else if root, err := v.rootAt(c.Checkpoint.Size); err != nil || root != c.Checkpoint.Root {
			return rep, forkOf(c.Checkpoint, "the checkpoint witness "+c.Witness+" cosigned", audit.Checkpoint{Size: c.Checkpoint.Size, Root: root}, "this log")
		}
	}
	tree, stop := l.verifyHashes(v, last.Size)
	defer stop()
	res, err := audit.VerifyDecoded(l.decodedEntries(v, last.Size), audit.VerifyOptions{
		Start: &start, Checkpoints: cps, Tree: tree, TreeSize: v.size,
	})
	if err != nil {
		return rep, unwrapVerify(err)
	}
	rep.Hashed = res.Size - last.Size
	rep.Root = res.Root.String()
	return rep, nil
}

// verifyHashes serves the stored hashes a replay from leaf from reads: a
// stream from a twin transaction of the same snapshot when one can be had,
// else v's own reader. stop ends the stream and the twin.
func (l *Log) verifyHashes(v *view, from int64) (tlog.HashReader, func()) {
	tx, ok := v.twin()
	if !ok {
		return v.hashes(), func() {}
	}
	ctx, cancel := context.WithCancel(v.ctx)
	s := streamHashes(ctx, tx, tlog.StoredHashIndex(0, from), tlog.StoredHashIndex(0, v.size), v.hashes())
	return s, func() {
		cancel()
		for range s.chunks {
		}
		tx.Rollback()
	}
}

func checkColumns(seq int64, e audit.Entry, cols [5]string) error {
	want := [5]string{audit.FormatTimestamp(e.Timestamp), e.Agent, string(e.Action), e.Tool, string(e.Result)}
	names := [5]string{"ts", "agent", "action", "tool", "result"}
	for i := range cols {
		if cols[i] != want[i] {
			return &audit.VerifyError{Seq: seq, Kind: audit.KindCopyChanged,
				Detail: fmt.Sprintf("the indexed column %s says %q but the entry says %q: the column copy was edited (the entry is as signed)", names[i], cols[i], want[i])}
		}
	}
	return nil
}

func unwrapVerify(err error) error {
	var verr *audit.VerifyError
	if errors.As(err, &verr) {
		return verr
	}
	return err
}

// locator narrows a rewrite down through the checkpoint history: every
// signed checkpoint is kept, so bisecting over them finds the commit whose
// signed root the stored tree (which agrees with the entries there) first
// misses. Each checkpoint used is authenticated.
func (l *Log) locator(v *view) func(lo, hi int64) (int64, bool, error) {
	matches := func(size int64, note []byte) (bool, error) {
		cp, err := l.openNote(note, fmt.Sprintf("the checkpoint history's tree size %d", size))
		if err != nil {
			return false, err
		}
		if cp.Size != size {
			return false, problemf(audit.NoSeq, audit.KindContentChanged, "the checkpoint history row of tree size %d holds a checkpoint of tree size %d", size, cp.Size)
		}
		root, err := v.rootAt(size)
		if err != nil {
			return false, err
		}
		return root == cp.Root, nil
	}
	return func(lo, hi int64) (int64, bool, error) {
		s, note, ok, err := v.historyNear(lo+1, hi+1, true)
		if err != nil || !ok {
			return 0, false, err
		}
		if ok, err := matches(s, note); err != nil || ok {
			return 0, false, err
		}
		bad := s
		for {
			mid := lo + (bad-lo)/2
			s, note, ok, err := v.historyNear(max(mid, lo+1), bad, false)
			if err == nil && !ok {
				s, note, ok, err = v.historyNear(lo+1, bad, true)
			}
			if err != nil {
				return 0, false, err
			}
			if !ok {
				return lo, true, nil
			}
			same, err := matches(s, note)
			if err != nil {
				return 0, false, err
			}
			if same {
				lo = s
			} else {
				bad = s
			}
		}
	}
}

// compile-time check that the view's hashes serve tlog.
var _ tlog.HashReader = hashReader{}
