package governance

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/caller"
)

// Console shows governance decisions to a person (stderr in serve: stdout
// carries only JSON-RPC).
type Console interface {
	Decision(line DecisionLine)
}

// DecisionLine is one governed call, as the console shows it.
type DecisionLine struct {
	Time time.Time `json:"time"`
	Tool string    `json:"tool"`
	// Target is what the call was about (path, URL, query, URI), redacted,
	// also when the call was refused before its access was known.
	Target     string   `json:"target,omitempty"`
	Access     string   `json:"access,omitempty"`
	Result     string   `json:"result"`
	Reason     string   `json:"reason,omitempty"`
	Rules      []string `json:"rules,omitempty"`
	Seq        *uint64  `json:"seq,omitempty"`
	TrustScore *int     `json:"trust_score,omitempty"`
	Enforced   bool     `json:"enforced"`
	Error      string   `json:"error,omitempty"`
	// Caller is who called (its ID), when an authenticated caller with a
	// trust score of its own; empty for the local user and anonymous
	// loopback callers, who share the server's.
	Caller string `json:"caller,omitempty"`
}

func (p *Pipeline) console(c Call, o outcome, who *audit.Caller, e audit.Entry, err error) {
	if p.opts.Console == nil {
		return
	}
	l := DecisionLine{Time: p.opts.Now(), Tool: c.Tool, Target: o.target, Access: o.access, Result: string(o.result), Reason: o.reason, Rules: o.rules, Enforced: o.enforce == nil || *o.enforce}
	// Named when the caller has a trust score of its own (audit.Entry.Subject).
	if who != nil && caller.Kind(who.Kind).OwnTrust() {
		l.Caller = who.ID
	}
	if err != nil {
		l.Result, l.Error = "error", err.Error()
	} else if !p.opts.BatchedAudit {
		seq := e.Seq
		l.Seq, l.TrustScore = &seq, e.TrustScore
	}
	p.opts.Console.Decision(l)
}

// TextConsole writes "✓ allowed" / "✗ blocked" lines, or JSON lines.
type TextConsole struct {
	W    io.Writer
	JSON bool

	mu sync.Mutex
	// scores are the last score shown per caller ("" for the server's
	// own), for the change each line shows.
	scores map[string]int
}

// Decision writes one line.
func (t *TextConsole) Decision(l DecisionLine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.JSON {
		b, _ := json.Marshal(l)
		fmt.Fprintf(t.W, "%s\n", b)
		return
	}
	mark := map[string]string{"allowed": "✓ allowed ", "blocked": "✗ blocked ", "redacted": "✓ redacted", "withheld": "✗ withheld", "error": "! error   "}[l.Result]
	if !l.Enforced {
		mark = "~ shadow  "
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", mark, l.Tool)
	if l.Caller != "" {
		fmt.Fprintf(&b, " by %s", l.Caller)
	}
	switch {
	case l.Access != "":
		fmt.Fprintf(&b, " (%s)", l.Access)
	case l.Target != "":
		fmt.Fprintf(&b, " (%s)", l.Target)
	}
	if l.Reason != "" {
		fmt.Fprintf(&b, ": %s", l.Reason)
	}
	if len(l.Rules) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(l.Rules, ", "))
	}
	if l.Seq != nil {
		fmt.Fprintf(&b, "  audit #%d", *l.Seq)
	}
	if l.TrustScore != nil {
		fmt.Fprintf(&b, "  trust %d", *l.TrustScore)
		if last, ok := t.scores[l.Caller]; ok && last != *l.TrustScore {
			fmt.Fprintf(&b, " (%+d)", *l.TrustScore-last)
		}
		if t.scores == nil {
			t.scores = map[string]int{}
		}
		t.scores[l.Caller] = *l.TrustScore
	}
	if l.Error != "" {
		fmt.Fprintf(&b, "  REFUSED: %s", l.Error)
	}
	fmt.Fprintln(t.W, b.String())
}
