package compliance

import "time"

// ReportVersion is the "version" of the JSON report; it changes only when a
// member changes meaning or is removed.
const ReportVersion = 1

// Control statuses.
const (
	StatusPass          = "pass"
	StatusFail          = "fail"
	StatusNoEvidence    = "no-evidence"
	StatusNotApplicable = "n/a"
)

// Report is the evidence for one framework over one period. Its JSON
// encoding (members in this order, maps with sorted keys) is stable for
// machines; see docs/compliance.md.
type Report struct {
	Version   int       `json:"version"`
	Framework string    `json:"framework"`
	Generated time.Time `json:"generated"`
	Period    Period    `json:"period"`
	Log       LogInfo   `json:"log"`
	// OK is false when a control failed or has no evidence (exit 1).
	OK       bool            `json:"ok"`
	Summary  map[string]int  `json:"summary"` // controls per status
	Controls []ControlResult `json:"controls"`
	// Checkpoints are the signed checkpoints the evidence cites, by size.
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// Period is the report's time range and the entries in it.
type Period struct {
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Entries int64     `json:"entries"`
	// FirstSeq and LastSeq bound the period's entries (absent when none).
	FirstSeq *uint64 `json:"first_seq,omitempty"`
	LastSeq  *uint64 `json:"last_seq,omitempty"`
}

// LogInfo says which log the evidence is from and how to check it.
type LogInfo struct {
	Origin string `json:"origin"`
	// Size is the number of entries in the read the report was made from.
	Size int64 `json:"size"`
	// Checkpoint is the latest signed checkpoint in that read.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// VerifierKeys check the checkpoints' signatures (`audit verify
	// --proof FILE --key VKEY`).
	VerifierKeys []string `json:"verifier_keys"`
	// Retention is the audit retention in force (audit.retention, or 6y
	// under hipaa), empty when none is declared.
	Retention string `json:"retention,omitempty"`
}

// Checkpoint is a signed checkpoint: its size, root and time, and the
// signed note itself (C2SP tlog-checkpoint).
type Checkpoint struct {
	Size int64     `json:"size"`
	Root string    `json:"root"`
	Time time.Time `json:"time"`
	Note string    `json:"note"`
}

// ControlResult is one control's evidence and verdict.
type ControlResult struct {
	ID        string `json:"id"`
	Framework string `json:"framework"`
	Ref       string `json:"ref"`
	Title     string `json:"title"`
	Objective string `json:"objective"`
	Status    string `json:"status"`
	// Reason says why the control did not pass (or what n/a means here).
	Reason        string               `json:"reason,omitempty"`
	Evidence      []EvidenceResult     `json:"evidence,omitempty"`
	Verifications []VerificationResult `json:"verifications,omitempty"`
}

// EvidenceResult is what the log holds for one piece of evidence.
type EvidenceResult struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Match    string `json:"match"`
	Required bool   `json:"required"`
	// Count is how many entries of the period match.
	Count    int64   `json:"count"`
	FirstSeq *uint64 `json:"first_seq,omitempty"`
	LastSeq  *uint64 `json:"last_seq,omitempty"`
	// By counts the period's matching entries by a member (Evidence.By).
	By map[string]int64 `json:"by,omitempty"`
	// Cited are the entries an auditor can check one by one: the first,
	// the last and a few between, each with the first signed checkpoint
	// that covers it.
	Cited []Cited `json:"cited,omitempty"`
	// Baseline is the newest matching entry before the period (what was
	// in force when it began), or the log's first entry.
	Baseline *Cited `json:"baseline,omitempty"`
}

// Cited is one entry the report relies on.
type Cited struct {
	Seq       uint64    `json:"seq"`
	Timestamp time.Time `json:"timestamp"`
	Action    string    `json:"action"`
	Tool      string    `json:"tool,omitempty"`
	Result    string    `json:"result,omitempty"`
	// Checkpoint is the size of the first signed checkpoint covering the
	// entry (in Report.Checkpoints).
	Checkpoint int64 `json:"checkpoint"`
	// Proof is the file holding the entry's inclusion proof against that
	// checkpoint, when the report was asked to write proofs.
	Proof string `json:"proof,omitempty"`
}

// VerificationResult is one recorded `audit verify` run in the period.
type VerificationResult struct {
	At     time.Time `json:"at"`
	Mode   string    `json:"mode"`
	Size   int64     `json:"size"`
	Root   string    `json:"root,omitempty"`
	OK     bool      `json:"ok"`
	Signed bool      `json:"signed"`
	Detail string    `json:"detail,omitempty"`
	// CheckpointRoot is the root of the signed checkpoint of the same
	// size, when the history keeps one.
	CheckpointRoot string `json:"checkpoint_root,omitempty"`
	// Accepted: a full run that passed, whose record is signed and whose
	// root is the signed checkpoint's.
	Accepted bool   `json:"accepted"`
	Why      string `json:"why,omitempty"`
	// Note is the signed record (when signed).
	Note string `json:"note,omitempty"`
}
