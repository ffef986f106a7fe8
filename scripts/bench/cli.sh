#!/usr/bin/env bash
# Whole-process timings of short agentmesh commands with hyperfine
# (apt-get install hyperfine). Usage: scripts/bench/cli.sh [hyperfine flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v hyperfine >/dev/null || { echo "hyperfine is needed: apt-get install hyperfine" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -trimpath -o "$work/agentmesh" ./cmd/agentmesh
unset AGENTMESH_DATABASE_URL
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" AGENTMESH_STATE_DIR="$work/state"
mkdir -p "$HOME"
"$work/agentmesh" identity create --name bench --sponsor bench@example.com 2>/dev/null
hyperfine --warmup 5 --runs 50 -N "$@" \
  "$work/agentmesh version" \
  "$work/agentmesh identity show" \
  "$work/agentmesh identity show --output json"
