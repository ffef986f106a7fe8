package auditlog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// TestEvidenceReader: the period's entries, what was in force before it,
// the first signed checkpoint covering an entry, a proof against that
// checkpoint and the recorded verifications, with their signatures.
func TestEvidenceReader(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir())
	f.appendN(t, 30) // one commit, one checkpoint per entry; entry i at t0+i s
	rep, err := f.verify(t)
	if err != nil {
		t.Fatal(err)
	}
	err = f.log.ReadEvidence(ctx, func(r *EvidenceReader) error {
		if r.Size() != 30 {
			t.Errorf("size %d", r.Size())
		}
		var seqs []uint64
		for s, err := range r.Entries(t0.Add(10*time.Second), t0.Add(19*time.Second)) {
			if err != nil {
				return err
			}
			seqs = append(seqs, s.Entry.Seq)
		}
		if len(seqs) != 10 || seqs[0] != 10 || seqs[9] != 19 {
			t.Errorf("period entries %v, want 10..19", seqs)
		}
		before, err := r.LastBefore(t0.Add(10*time.Second), audit.ActionToolInvocation)
		if err != nil || before == nil || before.Entry.Seq != 9 {
			t.Errorf("last before the period: %+v, %v; want seq 9", before, err)
		}
		if none, err := r.LastBefore(t0.Add(10*time.Second), audit.ActionPolicyLoaded); none != nil || err != nil {
			t.Errorf("no policy_loaded entry, got %+v, %v", none, err)
		}
		signed, cp, err := r.Covering(15)
		if err != nil {
			return err
		}
		if cp.Size != 16 || !strings.Contains(string(signed), "\n16\n") {
			t.Errorf("covering checkpoint of entry 15 has size %d, want the first one above it (16)", cp.Size)
		}
		proof, err := r.Prove(15, cp.Size)
		if err != nil {
			return err
		}
		got, err := audit.VerifyInclusionProof(proof, f.log.Verifiers())
		if err != nil || got.Entry.Seq != 15 || got.Checkpoint.Size != 16 || got.Checkpoint.Root != cp.Root {
			t.Errorf("proof of 15 against size 16: %+v, %v", got, err)
		}
		if _, err := r.Prove(20, 16); err == nil {
			t.Error("an entry the checkpoint does not cover was proved")
		}
		if _, _, err := r.Covering(30); err == nil {
			t.Error("a checkpoint covers an entry that is not there")
		}
		vs, err := r.Verifications(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		if len(vs) != 1 || vs[0].Mode != "full" || !vs[0].OK || vs[0].Size != 30 || vs[0].Root != rep.Root || !vs[0].Signed {
			t.Errorf("verifications %+v, want the full run of size 30 with root %s, signed", vs, rep.Root)
		}
		if old, _ := r.Verifications(t0.Add(-time.Hour), t0); len(old) != 0 {
			t.Errorf("verifications outside the period: %+v", old)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// An edited record no longer counts as signed; a damaged entry is an
	// error, never skipped.
	f.exec(t, `UPDATE audit_verifications SET size = 29`)
	f.exec(t, `UPDATE audit_entries SET entry = CAST('{"broken' AS BLOB) WHERE seq = 12`)
	err = f.log.ReadEvidence(ctx, func(r *EvidenceReader) error {
		vs, err := r.Verifications(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil || len(vs) != 1 || vs[0].Signed {
			t.Errorf("an edited record: %+v, %v; want it unsigned", vs, err)
		}
		for _, err := range r.Entries(t0, t0.Add(time.Hour)) {
			if err == nil || !strings.Contains(err.Error(), "audit entry 12 is damaged") {
				t.Errorf("damaged entry: %v", err)
			}
			break
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
