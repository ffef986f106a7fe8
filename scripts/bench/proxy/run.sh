#!/usr/bin/env bash
# Whole-process proxy benchmark (README.md): server-everything's `echo` called
# directly vs through `agentmesh serve` over stdio (audit synchronous=full and
# =normal), and through supergateway vs `agentmesh serve --http` over
# streamable HTTP, then the audit logs checked. Prints a markdown report.
#
# Usage: scripts/bench/proxy/run.sh [bench.mjs flags]
#   e.g. run.sh --rounds 10 --calls 50 --seconds 5 --phases stdio,http
# Environment:
#   AGENTMESH_BIN=/tmp/bench-agentmesh  where the binary is built
#   MAX_LOAD=1.5  after building, wait (60 s at a time, up to LOAD_TRIES=10)
#                 until the 1-minute load average is at most this
#   KEEP=1        keep the work directory (configs, state dirs, stderr logs)
#   REPORT=FILE   also write the markdown report to FILE
# Needs go, node >= 20 and npm (npm ci runs when node_modules is missing or
# older than package-lock.json). Loopback only; nothing is fetched at run
# time except by npm ci.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${AGENTMESH_BIN:-/tmp/bench-agentmesh}

echo "uptime before: $(uptime)"
echo "building $bin" >&2
(cd "$root" && go build -o "$bin" ./cmd/agentmesh)

if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	echo "npm ci in $here" >&2
	(cd "$here" && npm ci --no-audit --no-fund >&2)
fi

if [ -n "${MAX_LOAD:-}" ]; then
	for i in $(seq "${LOAD_TRIES:-10}"); do
		load=$(cut -d' ' -f1 /proc/loadavg)
		if awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l <= m) }'; then break; fi
		echo "1-minute load $load > $MAX_LOAD: waiting 60 s (try $i)" >&2
		sleep 60
	done
	echo "uptime at start: $(uptime)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/agentmesh-proxy-bench.XXXXXX")
cleanup() { if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT

rc=0
node "$here/bench.mjs" --agentmesh "$bin" --work "$work" ${REPORT:+--markdown "$REPORT"} "$@" || rc=$?
echo
echo "uptime after: $(uptime)"
exit $rc
