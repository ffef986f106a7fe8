package main

import (
	"context"
	"fmt"
	"time"

	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/witness"
)

// cosignedCheckpoints gathers, for each --witness-key, the newest
// checkpoint of this log that witness cosigned: asked of the witness itself
// when audit.witnesses lists its URL, and from what serve recorded of its
// answers. A witness that refused the log's checkpoints is a failure: it
// saw a history that does not extend what it cosigned.
func cosignedCheckpoints(ctx context.Context, cfg *config.Config, l *auditlog.Log, keys []string) ([]auditlog.Cosigned, error) {
	states, err := l.WitnessStates(ctx)
	if err != nil {
		return nil, err
	}
	var out []auditlog.Cosigned
	for _, k := range keys {
		v, err := witness.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("--witness-key: %w", err)
		}
		var best *auditlog.Cosigned
		var problems []string
		consider := func(signed []byte, source string) {
			cp, _, err := l.OpenCosigned(signed, k)
			if err != nil {
				problems = append(problems, source+": "+err.Error())
				return
			}
			if best == nil || cp.Size > best.Checkpoint.Size {
				best = &auditlog.Cosigned{Witness: v.Name(), Checkpoint: cp}
			}
		}
		for _, st := range states {
			if st.Witness != k {
				continue
			}
			if st.State == auditlog.WitnessRefused {
				return nil, problemf("audit verify failed: fork: witness %s refused this log's checkpoints (%s): %s", v.Name(), st.At.Format(time.RFC3339), st.Detail)
			}
			if st.Note != nil {
				consider(st.Note, "the cosignature serve recorded")
			}
		}
		for _, w := range cfg.Audit.Witnesses {
			if w.Key != k {
				continue
			}
			c := &witness.Client{URL: w.URL, Verifier: v, HTTP: nil}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			signed, err := c.Latest(cctx, l.Origin())
			cancel()
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("asking %s: %v", w.URL, err))
			case signed != nil:
				consider(signed, "the witness at "+w.URL)
			}
		}
		if best == nil {
			msg := fmt.Sprintf("audit verify failed: no checkpoint of this log cosigned by witness %s", v.Name())
			for _, p := range problems {
				msg += "; " + p
			}
			return nil, problemf("%s (list it in audit.witnesses so that serve submits checkpoints to it)", msg)
		}
		out = append(out, *best)
	}
	return out, nil
}
