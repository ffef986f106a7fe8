#!/usr/bin/env bash
# Audit log benchmarks: library appends (go test -bench) and whole commands
# on a 1,000,000-entry log (hyperfine). Usage: scripts/bench/audit.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== go test -bench Append ./pkg/auditlog"
go test -run '^$' -bench 'Append' -benchtime 3s ./pkg/auditlog
go build -o "$work/agentmesh" ./cmd/agentmesh
go build -o "$work/auditfill" ./scripts/bench/auditfill
# From here on HOME is a scratch directory (the audit witness lives under
# it); nothing below runs the go command, whose caches live under HOME.
unset AGENTMESH_DATABASE_URL
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" AGENTMESH_STATE_DIR="$work/state"
mkdir -p "$HOME"
echo "== filling a $n-entry log"
"$work/auditfill" -state "$work/state" -n "$n"
echo "== whole commands"
"$work/agentmesh" audit verify   # the baseline for --incremental
"$work/auditfill" -state "$work/state" -n 10000 -sync full
hyperfine --warmup 3 --runs 20 -N \
  "$work/agentmesh audit --limit 50 --agent did:agentmesh:bench" \
  "$work/agentmesh audit verify --incremental" \
  "$work/agentmesh status"
hyperfine --runs 3 -N "$work/agentmesh audit verify"
