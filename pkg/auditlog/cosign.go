package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/witness"
)

// ExternalWitness is a C2SP tlog-witness the log submits its checkpoints to.
type ExternalWitness struct {
	URL string // submission prefix
	Key string // verifier key (cosignature/v1)
}

// submitter sends the writer's newest checkpoint to one external witness,
// coalesced and off the call path, and records the answer (table
// audit_witnesses) for `status` and `audit verify --witness-key`. A
// witness that is down or slow delays nothing but its own cosignature.
type submitter struct {
	l      *Log
	w      ExternalWitness
	client *witness.Client

	mu   sync.Mutex
	size int64
	note []byte
	wake chan struct{}
}

const (
	submitMinBackoff = time.Second
	submitMaxBackoff = time.Minute
)

// startSubmitters starts one goroutine per external witness.
func (l *Log) startSubmitters(ws []ExternalWitness) error {
	for _, w := range ws {
		v, err := witness.NewVerifier(w.Key)
		if err != nil {
			return err
		}
		s := &submitter{l: l, w: w, client: &witness.Client{URL: w.URL, Verifier: v}, wake: make(chan struct{}, 1)}
		l.submitters = append(l.submitters, s)
		if l.tree.f.Size() > 0 {
			s.offer(l.tree.f.Size(), l.tree.note)
		}
		l.wg.Add(1)
		go s.run()
	}
	return nil
}

func (s *submitter) offer(size int64, signed []byte) {
	s.mu.Lock()
	if size > s.size {
		s.size, s.note = size, signed
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *submitter) run() {
	defer s.l.wg.Done()
	backoff := submitMinBackoff
	for {
		var retry <-chan time.Time
		select {
		case <-s.wake:
		case <-s.l.done:
			// A last try, so that the witness holds what this process
			// signed when it stops.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.submit(ctx)
			cancel()
			return
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			transient := s.submit(ctx)
			cancel()
			if !transient {
				backoff = submitMinBackoff
				break
			}
			retry = time.After(backoff)
			backoff = min(2*backoff, submitMaxBackoff)
			select {
			case <-retry:
			case <-s.wake:
			case <-s.l.done:
				return
			}
		}
	}
}

// submit sends the newest checkpoint and records the answer; it reports
// whether trying again later may help (the witness was unreachable).
func (s *submitter) submit(ctx context.Context) (transient bool) {
	s.mu.Lock()
	size, signed := s.size, s.note
	s.mu.Unlock()
	if signed == nil {
		return false
	}
	prev, err := s.l.witnessState(ctx, s.w.Key)
	if err != nil {
		return true
	}
	if prev != nil && prev.Size >= size && prev.State == WitnessCosigned {
		return false
	}
	old := int64(0)
	if prev != nil {
		old = prev.Size
	}
	for attempt := 0; attempt < 3; attempt++ {
		if old > size {
			s.record(ctx, prev, WitnessRefused, fmt.Sprintf("the witness has cosigned tree size %d, more than this log's %d: the log was rolled back", old, size), 0, nil)
			return false
		}
		proof, err := s.l.consistencyProof(ctx, old, size, signed)
		if err != nil {
			s.record(ctx, prev, WitnessBehind, "no consistency proof for the witness: "+err.Error(), 0, nil)
			return false
		}
		cosig, err := s.client.AddCheckpoint(ctx, old, proof, signed)
		var conflict *witness.Conflict
		var refused *witness.Refused
		switch {
		case err == nil:
			s.record(ctx, prev, WitnessCosigned, "", size, append(append([]byte{}, signed...), cosig...))
			return false
		case errors.As(err, &conflict) && conflict.Size != old:
			old = conflict.Size // it holds another size than we knew
			continue
		case errors.As(err, &refused):
			detail := refused.Reason
			if refused.Fork() {
				detail = fmt.Sprintf("it will not cosign tree size %d: %s (the log's history is not an extension of what it cosigned: a fork or a rollback)", size, refused.Reason)
			}
			s.record(ctx, prev, WitnessRefused, detail, 0, nil)
			return false
		default:
			s.record(ctx, prev, WitnessUnreachable, err.Error(), 0, nil)
			return true
		}
	}
	s.record(ctx, prev, WitnessRefused, "the witness keeps answering with another tree size", 0, nil)
	return false
}

// record saves a witness's answer; a cosignature moves its size forward,
// anything else keeps the last cosigned checkpoint.
func (s *submitter) record(ctx context.Context, prev *WitnessState, state, detail string, size int64, cosigned []byte) {
	if cosigned == nil && prev != nil {
		size, cosigned = prev.Size, prev.Note
	}
	at := audit.FormatTimestamp(s.l.opts.Now())
	err := s.l.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_witnesses(witness, url, size, note, state, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(witness) DO UPDATE SET url = excluded.url, size = excluded.size, note = excluded.note, state = excluded.state, detail = excluded.detail, at = excluded.at`,
			s.w.Key, s.w.URL, size, cosigned, state, detail, at)
		return err
	})
	if err != nil && s.l.opts.OnWitnessError != nil {
		s.l.opts.OnWitnessError(fmt.Errorf("recording witness %s's answer: %w", s.w.URL, err))
	}
	if state == WitnessRefused && s.l.opts.OnWitnessError != nil && (prev == nil || prev.State != WitnessRefused || prev.Detail != detail) {
		s.l.opts.OnWitnessError(fmt.Errorf("witness %s refused this log's checkpoint: %s", s.w.URL, detail))
	}
}

// witnessState returns what is recorded of a witness, nil if nothing.
func (l *Log) witnessState(ctx context.Context, key string) (*WitnessState, error) {
	var out *WitnessState
	err := l.read(ctx, func(v *view) error {
		all, err := v.witnessStates()
		for i := range all {
			if all[i].Witness == key {
				out = &all[i]
			}
		}
		return err
	})
	return out, err
}

// consistencyProof proves, from the stored tree, that the signed
// checkpoint of tree size n extends tree size m, after checking that the
// stored tree reproduces that checkpoint's root.
func (l *Log) consistencyProof(ctx context.Context, m, n int64, signed []byte) (tlog.TreeProof, error) {
	cp, err := l.openNote(signed, "the checkpoint to submit")
	if err != nil {
		return nil, err
	}
	var proof tlog.TreeProof
	err = l.read(ctx, func(v *view) error {
		if v.size < n {
			return fmt.Errorf("the stored log has %d entries, fewer than the checkpoint's %d", v.size, n)
		}
		root, err := v.rootAt(n)
		if err != nil || root != cp.Root {
			return fmt.Errorf("the stored tree does not reproduce the root of tree size %d", n)
		}
		proof, err = audit.ProveConsistency(m, n, v.hashes())
		return err
	})
	return proof, err
}

// WitnessStates returns every external witness's recorded answer.
func (l *Log) WitnessStates(ctx context.Context) ([]WitnessState, error) {
	var out []WitnessState
	err := l.read(ctx, func(v *view) error {
		var err error
		out, err = v.witnessStates()
		return err
	})
	return out, err
}

// OpenCosigned authenticates a checkpoint an external witness cosigned:
// the log's signature (this log's keys) and the witness's cosignature.
func (l *Log) OpenCosigned(signed []byte, witnessKey string) (audit.Checkpoint, time.Time, error) {
	v, err := witness.NewVerifier(witnessKey)
	if err != nil {
		return audit.Checkpoint{}, time.Time{}, err
	}
	at, err := witness.Cosigned(signed, v)
	if err != nil {
		return audit.Checkpoint{}, time.Time{}, fmt.Errorf("witness %s: %w", v.Name(), err)
	}
	cp, err := l.openNote(signed, "the checkpoint cosigned by witness "+v.Name())
	return cp, at, err
}
