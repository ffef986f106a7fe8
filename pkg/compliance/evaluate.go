package compliance

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Source is one consistent read of an audit log (auditlog.EvidenceReader
// behind an adapter): the package reads, it never writes.
type Source interface {
	Origin() string
	Size() int64
	// Latest is the latest signed checkpoint; an error for an empty log.
	Latest() ([]byte, audit.Checkpoint, error)
	// Entries yields the entries with a timestamp in [since, until] in
	// seq order.
	Entries(since, until time.Time) iter.Seq2[audit.Entry, error]
	// LastBefore is the newest entry with one of the actions before t.
	LastBefore(t time.Time, actions ...audit.Action) (*audit.Entry, error)
	Entry(seq int64) (audit.Entry, error)
	// Covering is the first signed checkpoint whose size is above seq.
	Covering(seq int64) ([]byte, audit.Checkpoint, error)
	// CheckpointAt is the signed checkpoint of a size, if one is kept.
	CheckpointAt(size int64) ([]byte, audit.Checkpoint, bool, error)
	Verifications(since, until time.Time) ([]Verification, error)
}

// Verification is a recorded run of `audit verify`.
type Verification struct {
	At     time.Time
	Mode   string
	Size   int64
	Root   string
	OK     bool
	Detail string
	Note   []byte
	Signed bool
}

// Options say what to report on.
type Options struct {
	Framework    string
	Since, Until time.Time
	// Generated is the report's time (Until when zero).
	Generated time.Time
	// VerifierKeys and Retention are copied into the report's header.
	VerifierKeys []string
	Retention    string
	// Samples is how many entries each piece of evidence cites at most
	// (first, last and spread between); 5 when zero.
	Samples int
}

// Evaluate builds the report of a framework over a period from src.
func Evaluate(ctx context.Context, src Source, opts Options) (*Report, error) {
	controls := Controls(opts.Framework)
	if len(controls) == 0 {
		return nil, fmt.Errorf("unknown framework %q: want %s or %s", opts.Framework, SOC2, HIPAA)
	}
	if opts.Samples <= 0 {
		opts.Samples = 5
	}
	if opts.Generated.IsZero() {
		opts.Generated = opts.Until
	}
	ev := &evaluation{src: src, opts: opts, checkpoints: map[int64]Checkpoint{},
		rep: &Report{Version: ReportVersion, Framework: opts.Framework, Generated: opts.Generated.UTC(),
			Period: Period{Since: opts.Since.UTC(), Until: opts.Until.UTC()},
			Log:    LogInfo{Origin: src.Origin(), Size: src.Size(), VerifierKeys: opts.VerifierKeys, Retention: opts.Retention}}}
	if ev.rep.Log.VerifierKeys == nil {
		ev.rep.Log.VerifierKeys = []string{}
	}
	if signed, cp, err := src.Latest(); err == nil {
		ev.rep.Log.Checkpoint = checkpointOf(signed, cp)
	}
	if err := ev.scan(ctx, controls); err != nil {
		return nil, err
	}
	for i, c := range controls {
		res, err := ev.control(c, ev.accs[i], ev.applies[i])
		if err != nil {
			return nil, err
		}
		ev.rep.Controls = append(ev.rep.Controls, res)
	}
	ev.finish()
	return ev.rep, nil
}

type evaluation struct {
	src         Source
	opts        Options
	rep         *Report
	accs        [][]*accumulator // per control, per evidence
	applies     []bool           // per control: an entry matched AppliesTo
	checkpoints map[int64]Checkpoint
}

// accumulator gathers one piece of evidence over the period's entries.
type accumulator struct {
	count int64
	first *audit.Entry
	last  *audit.Entry
	seqs  []uint64 // every matching seq, for samples (bounded below)
	by    map[string]int64
}

// maxKept bounds the seqs kept per piece of evidence for sampling; beyond
// it every other one is dropped, which keeps the spread.
const maxKept = 4096

func (a *accumulator) add(e audit.Entry, by string) {
	a.count++
	if a.first == nil {
		a.first = &e
	}
	a.last = &e
	if len(a.seqs) >= maxKept {
		half := a.seqs[:0]
		for i := 0; i < len(a.seqs); i += 2 {
			half = append(half, a.seqs[i])
		}
		a.seqs = half
	}
	a.seqs = append(a.seqs, e.Seq)
	if by != "" {
		if a.by == nil {
			a.by = map[string]int64{}
		}
		for _, k := range byKeys(e, by) {
			a.by[k]++
		}
	}
}

func byKeys(e audit.Entry, by string) []string {
	switch by {
	case "action":
		return []string{string(e.Action)}
	case "result":
		return []string{orNone(string(e.Result))}
	case "tool":
		return []string{orNone(e.Tool)}
	case "caller.kind":
		if e.Caller != nil {
			return []string{orNone(e.Caller.Kind)}
		}
		return []string{"(none)"}
	case "rule":
		if len(e.Rules) == 0 {
			return []string{"(none)"}
		}
		return e.Rules
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// scan reads the period's entries once for every control.
func (ev *evaluation) scan(ctx context.Context, controls []Control) error {
	ev.accs = make([][]*accumulator, len(controls))
	ev.applies = make([]bool, len(controls))
	for i, c := range controls {
		ev.accs[i] = make([]*accumulator, len(c.Evidence))
		for j := range c.Evidence {
			ev.accs[i][j] = &accumulator{}
		}
	}
	for e, err := range ev.src.Entries(ev.opts.Since, ev.opts.Until) {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		p := &ev.rep.Period
		if p.FirstSeq == nil {
			p.FirstSeq = ptr(e.Seq)
		}
		p.LastSeq = ptr(e.Seq)
		p.Entries++
		for i, c := range controls {
			if c.AppliesTo != nil && c.AppliesTo.Matches(&e) {
				ev.applies[i] = true
			}
			for j, evd := range c.Evidence {
				if !evd.FirstEntry && evd.Match.Matches(&e) {
					ev.accs[i][j].add(e, evd.By)
				}
			}
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// control turns a control's accumulated evidence into its result.
func (ev *evaluation) control(c Control, accs []*accumulator, matched bool) (ControlResult, error) {
	res := ControlResult{ID: c.ID, Framework: c.Framework, Ref: c.Ref, Title: c.Title, Objective: c.Objective}
	var missing []string
	found := false
	for j, evd := range c.Evidence {
		r, err := ev.evidence(evd, accs[j])
		if err != nil {
			return res, err
		}
		res.Evidence = append(res.Evidence, r)
		has := r.Count > 0 || r.Baseline != nil
		found = found || has
		if evd.Required && !has {
			missing = append(missing, evd.ID)
		}
	}
	applies := c.AppliesTo == nil || found || matched
	switch {
	case !applies:
		res.Status, res.Reason = StatusNotApplicable, "no entry in the period "+c.AppliesTo.String()+", and none of its evidence was found"
	case c.Verification:
		if err := ev.verifications(&res); err != nil {
			return res, err
		}
	case len(missing) > 0:
		res.Status, res.Reason = StatusNoEvidence, "no entries for required evidence: "+strings.Join(missing, ", ")
	case !found:
		res.Status, res.Reason = StatusNoEvidence, "none of the control's evidence occurred in the period"
	default:
		res.Status = StatusPass
	}
	return res, nil
}

// evidence cites the first, last and sampled entries of one piece of
// evidence, each with the first signed checkpoint covering it.
func (ev *evaluation) evidence(evd Evidence, a *accumulator) (EvidenceResult, error) {
	r := EvidenceResult{ID: evd.ID, Title: evd.Title, Match: evd.Match.String(), Required: evd.Required, Count: a.count, By: a.by}
	if evd.FirstEntry {
		r.Match = "the entry with seq 0"
		if ev.src.Size() == 0 {
			return r, nil
		}
		e, err := ev.src.Entry(0)
		if err != nil {
			return r, err
		}
		c, err := ev.cite(e)
		if err != nil {
			return r, err
		}
		r.Baseline = &c
		return r, nil
	}
	if a.count > 0 {
		r.FirstSeq, r.LastSeq = ptr(a.first.Seq), ptr(a.last.Seq)
		for _, seq := range samples(a.seqs, ev.opts.Samples) {
			e := *a.first
			switch seq {
			case a.first.Seq:
			case a.last.Seq:
				e = *a.last
			default:
				var err error
				if e, err = ev.src.Entry(int64(seq)); err != nil {
					return r, err
				}
			}
			c, err := ev.cite(e)
			if err != nil {
				return r, err
			}
			r.Cited = append(r.Cited, c)
		}
	}
	if evd.Baseline {
		b, err := ev.src.LastBefore(ev.opts.Since, evd.Match.Actions...)
		if err != nil {
			return r, err
		}
		if b != nil && evd.Match.Matches(b) {
			c, err := ev.cite(*b)
			if err != nil {
				return r, err
			}
			r.Baseline = &c
		}
	}
	return r, nil
}

// samples picks at most n seqs: the first, the last and evenly spread
// ones between.
func samples(seqs []uint64, n int) []uint64 {
	if len(seqs) <= n {
		return seqs
	}
	out := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, seqs[i*(len(seqs)-1)/(n-1)])
	}
	return out
}

// cite records an entry with the first signed checkpoint covering it.
func (ev *evaluation) cite(e audit.Entry) (Cited, error) {
	signed, cp, err := ev.src.Covering(int64(e.Seq))
	if err != nil {
		return Cited{}, fmt.Errorf("entry %d: %w", e.Seq, err)
	}
	if _, ok := ev.checkpoints[cp.Size]; !ok {
		ev.checkpoints[cp.Size] = *checkpointOf(signed, cp)
	}
	return Cited{Seq: e.Seq, Timestamp: e.Timestamp.UTC(), Action: string(e.Action), Tool: e.Tool, Result: string(e.Result), Checkpoint: cp.Size}, nil
}

func checkpointOf(signed []byte, cp audit.Checkpoint) *Checkpoint {
	return &Checkpoint{Size: cp.Size, Root: cp.Root.String(), Time: cp.Time.UTC(), Note: string(signed)}
}

// verifications judges the period's recorded verification runs: a failed
// run latches until a later full run passes (as `status` does); the
// control passes with an accepted full run and no failure left standing.
func (ev *evaluation) verifications(res *ControlResult) error {
	runs, err := ev.src.Verifications(ev.opts.Since, ev.opts.Until)
	if err != nil {
		return err
	}
	accepted, standing := 0, ""
	for _, v := range runs {
		r := VerificationResult{At: v.At.UTC(), Mode: v.Mode, Size: v.Size, Root: v.Root, OK: v.OK, Signed: v.Signed, Detail: v.Detail}
		if v.Signed {
			r.Note = string(v.Note)
		}
		if v.OK && v.Root != "" {
			_, cp, ok, err := ev.src.CheckpointAt(v.Size)
			if err != nil {
				return err
			}
			if ok {
				r.CheckpointRoot = cp.Root.String()
			}
		}
		switch {
		case !v.OK:
			r.Why = "the verification failed"
			standing = fmt.Sprintf("the %s verification of %s failed (%s) and no full verification passed after it", v.Mode, r.At.Format(time.RFC3339), v.Detail)
		case r.CheckpointRoot != "" && r.CheckpointRoot != v.Root:
			r.Why = "its root is not the signed checkpoint's of the same size"
			standing = fmt.Sprintf("the verification of %s recorded root %s, but the signed checkpoint of size %d has root %s", r.At.Format(time.RFC3339), v.Root, v.Size, r.CheckpointRoot)
		case v.Mode != "full":
			r.Why = "incremental: hashes only entries added since the last full run"
		case !v.Signed:
			r.Why = "its record is not signed with the identity key (run `audit verify` where the key is readable)"
		case r.CheckpointRoot == "":
			r.Why = "no signed checkpoint of its size is kept"
		default:
			r.Accepted = true
			accepted++
			standing = ""
		}
		res.Verifications = append(res.Verifications, r)
	}
	switch {
	case standing != "":
		res.Status, res.Reason = StatusFail, standing
	case accepted == 0:
		res.Status = StatusNoEvidence
		res.Reason = "no full verification of the log passed in the period with a signed record: run `agentmesh audit verify`"
		if len(runs) > 0 {
			res.Reason = "no accepted full verification in the period (see each run's why): run `agentmesh audit verify`"
		}
	default:
		res.Status = StatusPass
	}
	return nil
}

func (ev *evaluation) finish() {
	rep := ev.rep
	rep.Summary = map[string]int{StatusPass: 0, StatusFail: 0, StatusNoEvidence: 0, StatusNotApplicable: 0}
	rep.OK = true
	for _, c := range rep.Controls {
		rep.Summary[c.Status]++
		if c.Status == StatusFail || c.Status == StatusNoEvidence {
			rep.OK = false
		}
	}
	rep.Checkpoints = make([]Checkpoint, 0, len(ev.checkpoints))
	for _, c := range ev.checkpoints {
		rep.Checkpoints = append(rep.Checkpoints, c)
	}
	sort.Slice(rep.Checkpoints, func(i, j int) bool { return rep.Checkpoints[i].Size < rep.Checkpoints[j].Size })
}

// Citations lists every (seq, checkpoint size) pair the report cites, in
// order, without repeats: what proofs are written for.
func (r *Report) Citations() []*Cited {
	var out []*Cited
	for i := range r.Controls {
		for j := range r.Controls[i].Evidence {
			e := &r.Controls[i].Evidence[j]
			for k := range e.Cited {
				out = append(out, &e.Cited[k])
			}
			if e.Baseline != nil {
				out = append(out, e.Baseline)
			}
		}
	}
	return out
}
