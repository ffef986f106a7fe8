package governance

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
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
}

func (p *Pipeline) console(c Call, o outcome, e audit.Entry, err error) {
	if p.opts.Console == nil {
		return
	}
	l := DecisionLine{Time: p.opts.Now(), Tool: c.Tool, Target: o.target, Access: o.access, Result: string(o.result), Reason: o.reason, Rules: o.rules, Enforced: o.enforce == nil || *o.enforce}
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

	mu    sync.Mutex
	score *int
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
		if t.score != nil && *t.score != *l.TrustScore {
			fmt.Fprintf(&b, " (%+d)", *l.TrustScore-*t.score)
		}
		s := *l.TrustScore
		t.score = &s
	}
	if l.Error != "" {
		fmt.Fprintf(&b, "  REFUSED: %s", l.Error)
	}
	fmt.Fprintln(t.W, b.String())
}
