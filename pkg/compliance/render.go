package compliance

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Output formats.
const (
	FormatMarkdown = "md"
	FormatHTML     = "html"
	FormatJSON     = "json"
)

// Write renders the report in a format.
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatMarkdown:
		return r.writeMarkdown(w)
	case FormatHTML:
		return r.writeHTML(w)
	}
	return fmt.Errorf("unknown report format %q: want md, html or json", format)
}

// FrameworkName is how a framework is written in prose.
func FrameworkName(f string) string {
	switch f {
	case SOC2:
		return "SOC 2"
	case HIPAA:
		return "HIPAA"
	}
	return f
}

var statusMark = map[string]string{StatusPass: "✓ pass", StatusFail: "✗ fail", StatusNoEvidence: "✗ no evidence", StatusNotApplicable: "– n/a"}

// StatusText is a status with its mark.
func StatusText(s string) string { return statusMark[s] }

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// seqRange writes "41" or "41–97".
func seqRange(first, last *uint64) string {
	if first == nil {
		return "–"
	}
	if *first == *last {
		return strconv.FormatUint(*first, 10)
	}
	return fmt.Sprintf("%d–%d", *first, *last)
}

// summaryOf is the one-line evidence summary of a control.
func summaryOf(c ControlResult) string {
	var parts []string
	for _, e := range c.Evidence {
		if e.ID == "first-entry" && e.Baseline != nil {
			parts = append(parts, fmt.Sprintf("first entry: seq %d (%s, %s)", e.Baseline.Seq, e.Baseline.Action, stamp(e.Baseline.Timestamp)))
			continue
		}
		p := fmt.Sprintf("%s %d", e.ID, e.Count)
		if e.Count > 0 {
			p += " (seqs " + seqRange(e.FirstSeq, e.LastSeq) + ")"
		}
		if e.Baseline != nil {
			p += fmt.Sprintf(", before: seq %d", e.Baseline.Seq)
		}
		parts = append(parts, p)
	}
	if len(c.Verifications) > 0 {
		n := 0
		for _, v := range c.Verifications {
			if v.Accepted {
				n++
			}
		}
		parts = append(parts, fmt.Sprintf("verification runs %d, accepted %d", len(c.Verifications), n))
	}
	return strings.Join(parts, "; ")
}

// byText writes a count breakdown as "allowed 12, blocked 3".
func byText(by map[string]int64) string {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, by[k])
	}
	return strings.Join(parts, ", ")
}

// citedText writes cited entries as "41→42, 97→98" (seq → checkpoint size).
func citedText(cs []Cited) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%d→%d", c.Seq, c.Checkpoint)
	}
	return strings.Join(parts, ", ")
}

func mdCell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

func (r *Report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s compliance report\n\n", FrameworkName(r.Framework))
	fmt.Fprintf(&b, "- Log: `%s`, %d entries", r.Log.Origin, r.Log.Size)
	if cp := r.Log.Checkpoint; cp != nil {
		fmt.Fprintf(&b, " (latest signed checkpoint: size %d, root `%s`, %s)", cp.Size, cp.Root, stamp(cp.Time))
	}
	fmt.Fprintf(&b, "\n- Period: %s to %s, %d entries (seqs %s)\n", stamp(r.Period.Since), stamp(r.Period.Until), r.Period.Entries, seqRange(r.Period.FirstSeq, r.Period.LastSeq))
	if r.Log.Retention != "" {
		fmt.Fprintf(&b, "- Audit retention in force: %s (agentmesh never deletes entries)\n", r.Log.Retention)
	}
	for _, k := range r.Log.VerifierKeys {
		fmt.Fprintf(&b, "- Verifier key: `%s`\n", k)
	}
	fmt.Fprintf(&b, "- Generated: %s\n\n", stamp(r.Generated))
	verdict := "**OK**"
	if !r.OK {
		verdict = "**NOT OK**"
	}
	fmt.Fprintf(&b, "Result: %s — %d pass, %d fail, %d no evidence, %d not applicable.\n\n", verdict,
		r.Summary[StatusPass], r.Summary[StatusFail], r.Summary[StatusNoEvidence], r.Summary[StatusNotApplicable])
	b.WriteString("| control | title | status | evidence |\n|---|---|---|---|\n")
	for _, c := range r.Controls {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCell(c.ID), mdCell(c.Title), StatusText(c.Status), mdCell(summaryOf(c)))
	}
	for _, c := range r.Controls {
		fmt.Fprintf(&b, "\n## %s — %s\n\n%s. %s\n\nStatus: %s", c.ID, c.Title, c.Ref, c.Objective, StatusText(c.Status))
		if c.Reason != "" {
			fmt.Fprintf(&b, " — %s", c.Reason)
		}
		b.WriteString("\n")
		if len(c.Evidence) > 0 {
			b.WriteString("\n| evidence | selects | required | entries | seqs | by | cited seq→checkpoint | before the period |\n|---|---|---|---|---|---|---|---|\n")
			for _, e := range c.Evidence {
				before := ""
				if e.Baseline != nil {
					before = fmt.Sprintf("%d→%d (%s, %s)", e.Baseline.Seq, e.Baseline.Checkpoint, e.Baseline.Action, stamp(e.Baseline.Timestamp))
				}
				fmt.Fprintf(&b, "| %s: %s | %s | %v | %d | %s | %s | %s | %s |\n", e.ID, mdCell(e.Title), mdCell(e.Match), e.Required, e.Count,
					seqRange(e.FirstSeq, e.LastSeq), mdCell(byText(e.By)), citedText(e.Cited), before)
			}
		}
		if len(c.Verifications) > 0 {
			b.WriteString("\n| verified at | mode | size | root | ok | signed | checkpoint root | accepted |\n|---|---|---|---|---|---|---|---|\n")
			for _, v := range c.Verifications {
				acc := "yes"
				if !v.Accepted {
					acc = "no: " + v.Why
				}
				fmt.Fprintf(&b, "| %s | %s | %d | `%s` | %v | %v | `%s` | %s |\n", stamp(v.At), v.Mode, v.Size, v.Root, v.OK, v.Signed, v.CheckpointRoot, mdCell(acc))
			}
		}
	}
	if len(r.Checkpoints) > 0 {
		b.WriteString("\n## Signed checkpoints cited\n\n| size | root | time |\n|---|---|---|\n")
		for _, cp := range r.Checkpoints {
			fmt.Fprintf(&b, "| %d | `%s` | %s |\n", cp.Size, cp.Root, stamp(cp.Time))
		}
	}
	b.WriteString("\n" + howToCheck(r, "`", "`") + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// howToCheck says how an auditor re-checks every claim.
func howToCheck(r *Report, code, end string) string {
	key := "VKEY"
	if len(r.Log.VerifierKeys) > 0 {
		key = "'" + r.Log.VerifierKeys[0] + "'"
	}
	return "## How to check this report\n\n" +
		"1. " + code + "agentmesh audit verify" + end + " on the log's host checks every entry, every signed checkpoint kept (the cited ones included) and the witness.\n" +
		"2. Each cited entry `SEQ→SIZE` is in the log under the signed checkpoint of that size: with proofs written by " + code + "compliance report --proofs DIR" + end +
		", run " + code + "agentmesh audit verify --proof DIR/seq-SEQ-size-SIZE.json --key " + key + end + " anywhere (no state needed); or " +
		code + "agentmesh audit prove SEQ > p.json" + end + " for a proof against the latest checkpoint.\n" +
		"3. The JSON report (" + code + "--output json" + end + ") holds each cited checkpoint's signed note and each accepted verification's signed record; both open with the verifier key.\n" +
		"4. Counts are over the entries whose timestamp is in the period: " + code + "agentmesh audit --since TIME --limit 0 --output jsonl" + end + " lists them.\n"
}
