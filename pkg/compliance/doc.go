// Package compliance maps compliance frameworks (SOC 2, HIPAA) to what
// agentmesh enforces and records, and builds reports whose every claim an
// auditor can check against the audit log.
//
// Controls are data (Catalogue): each names the framework's requirement,
// the audit entries that show it operating (actions, results, rules and a
// few conditions on other members), which of them are required, and
// whether a passing full verification of the log is part of it. Evaluate
// reads one consistent snapshot of a log through Source (the storage
// packages implement it; this package never touches SQL), counts the
// matching entries of a period, and cites for each piece of evidence its
// first, last and a few sampled entries, each with the first signed
// checkpoint whose tree size covers it, so that `agentmesh audit verify
// --proof` can check them one by one. Verification runs are cited with
// their roots, compared with the signed checkpoint of the same size, and
// their signed records.
//
// A control passes when every required piece of evidence has entries in
// the period (or, for baseline evidence, before it: what was in force when
// it began), at least one piece has any, and, where asked, a full
// verification passed with nothing failed after it. Otherwise it fails
// (a verification failed, or disagrees with the signed checkpoints) or has
// no evidence; either makes the report not OK (`compliance report` exits
// 1). A control that applies only to some deployments (tool approvals:
// upstream servers) is not applicable when nothing in the period concerns
// it.
//
// Reports render as Markdown, self-contained HTML and JSON; the JSON is
// versioned (ReportVersion) and its members are stable.
package compliance
