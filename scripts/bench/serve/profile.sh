#!/usr/bin/env bash
# Where `agentmesh serve` spends its time (perf; agentmesh has no pprof
# flag). Three profiles, each summarized by perfsum as inclusive shares of
# the agentmesh process's samples:
#   throughput  perf record -g and fsync counts (perf stat tracepoints) on
#               agentmesh serve --http under loadgen's 16 sessions
#   overhead    perf record -g of the sequential stdio benchmark (agentmesh
#               samples only)
#   startup     perf record -g of repeated warm starts, plus the package
#               initialization times (GODEBUG=inittrace=1)
#
# Usage: scripts/bench/serve/profile.sh [throughput] [overhead] [startup]   (default: all)
# Knobs: SYNC=full (audit synchronous for the throughput profile), WINDOW=5
#   (length of each perf window), PROTOCOL= (pin the MCP protocol, e.g.
#   2025-11-25), KEEP=1. Needs perf (linux-perf) and
#   permission to use it (root, or kernel.perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/bench/serve/lib.sh

SYNC=${SYNC:-full} WINDOW=${WINDOW:-5} PROTOCOL=${PROTOCOL:-}
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(throughput overhead startup)
build
make_data

# summarize PERFDATA: perf's top self-time symbols, then the breakdown.
summarize() {
	echo "-- top symbols by self time (agentmesh process)"
	perf report -i "$1" --comm agentmesh --no-children --sort symbol --stdio -g none 2>/dev/null |
		grep '%' | head -25 | cut -c1-150 || true # head may cut perf off (SIGPIPE)
	echo "-- breakdown (inclusive share of all agentmesh samples, split over direct callees)"
	perf script -i "$1" -F comm,tid,ip,sym 2>/dev/null | "$TMP/bin/perfsum" -comm agentmesh -top 8 "${@:2}"
}

for w in "${what[@]}"; do
	case $w in
	throughput)
		echo
		echo "== throughput profile: agentmesh serve --http (audit synchronous=$SYNC) under 16 sessions; load average $(loadavg)"
		config "$TMP/prof-http" "$SYNC"
		start_agentmesh_http "$TMP/prof-http"
		"$TMP/bin/loadgen" -url "$url" -expect "$TMP/data/bench.txt" -duration $((2 * WINDOW + 2))s -warmup 2s \
			-pid "$server_pid" ${PROTOCOL:+-protocol "$PROTOCOL"} &
		lg=$!
		sleep 3
		echo "-- syscalls of agentmesh for ${WINDOW}s (calls completed in the same window: see loadgen's calls/s)"
		perf stat -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,syscalls:sys_enter_futex \
			-p "$server_pid" -- sleep "$WINDOW" 2>&1 | grep -E 'syscalls|elapsed'
		perf record -F 999 -g -p "$server_pid" -o "$TMP/http.perf" -- sleep "$WINDOW" 2>&1 | grep -v '^\[ perf record: Woken'
		wait "$lg"
		stop_server
		summarize "$TMP/http.perf" \
			'server.(*StreamableHTTPServer).ServeHTTP' 'server.(*MCPServer).HandleMessage' 'server.(*MCPServer).handleToolCall' \
			'governance.(*Pipeline).Run' 'governance.(*Pipeline).decide' 'identity.(*Rotator).Current' 'trust.(*Store).Get' \
			'filesystem.(*FS).read' 'governance.(*Pipeline).afterCall' 'auditlog.(*Log).commit' 'auditlog.(*Log).commit.func1' \
			'auditlog.(*Log).insert' 'database/sql.(*Tx).Commit' 'lib.Xsqlite3_prepare_v2' \
			'runtime.gcBgMarkWorker' 'runtime.mallocgc' 'runtime.sysmon' 'runtime.mcall'
		;;
	overhead)
		echo
		echo "== overhead profile: sequential stdio calls (agentmesh synchronous=$SYNC vs plain); load average $(loadavg)"
		config "$TMP/prof-stdio" "$SYNC"
		perf record -F 999 -g -o "$TMP/stdio.perf" -- "$TMP/bin/overhead" -agentmesh "$TMP/bin/agentmesh" \
			-gov "$SYNC=$TMP/prof-stdio/agentmesh.yaml" -plain "$TMP/bin/plainserver" -data "$TMP/data" \
			-expect "$TMP/data/bench.txt" -n 200 -blocks 10 -warmup 300 ${PROTOCOL:+-protocol "$PROTOCOL"} 2>&1 | grep -v '^\[ perf record: Woken'
		summarize "$TMP/stdio.perf" \
			'server.(*StdioServer).Listen' 'server.(*MCPServer).HandleMessage' 'governance.(*Pipeline).Run' \
			'governance.(*Pipeline).decide' 'identity.(*Rotator).Current' 'trust.(*Store).Get' 'filesystem.(*FS).read' \
			'governance.(*Pipeline).afterCall' 'auditlog.(*Log).commit' 'database/sql.(*Tx).Commit' 'lib.Xsqlite3_prepare_v2' \
			'runtime.gcBgMarkWorker' 'runtime.sysmon'
		;;
	startup)
		echo
		echo "== startup profile: 20 warm starts to the first call's response; load average $(loadavg)"
		config "$TMP/prof-start" full
		perf record -F 4999 -g -o "$TMP/start.perf" -- "$TMP/bin/startup" -bin "$TMP/bin/agentmesh" \
			-config "$TMP/prof-start/agentmesh.yaml" -expect "$TMP/data/bench.txt" -n 20 -cold 0 2>&1 | grep -v '^\[ perf record: Woken'
		summarize "$TMP/start.perf" \
			'runtime.rt0_go.abi0' 'runtime.main' 'runtime.doInit1' 'main.main' 'main.serveRun' 'mcpserver.Open' \
			'mcpserver.(*Runtime).open' 'redact.(*Redactor).RedactValue' 'governance.(*Pipeline).afterCall' \
			'runtime.gcBgMarkWorker' 'runtime.bgsweep' 'runtime.bgscavenge'
		echo "-- package initialization (GODEBUG=inittrace=1), one warm start; slowest packages, ms"
		printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}' |
			GODEBUG=inittrace=1 am "$TMP/prof-start" serve --quiet 2>"$TMP/inittrace.txt" >/dev/null
		awk '/^init / {print $5, $2}' "$TMP/inittrace.txt" | sort -rn | head -8 || true
		awk '/^init / {t += $5; n++; last = $3} END {printf "%d packages, %.1f ms of init in total; the last finished %s after process start\n", n, t, last}' "$TMP/inittrace.txt"
		printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}' |
			GODEBUG=inittrace=1 "$TMP/bin/plainserver" -root "$TMP/data" 2>"$TMP/inittrace-plain.txt" >/dev/null
		awk '/^init / {t += $5; n++; last = $3} END {printf "plainserver: %d packages, %.1f ms of init in total; the last finished %s after process start\n", n, t, last}' "$TMP/inittrace-plain.txt"
		;;
	*)
		echo "unknown profile $w (want throughput, overhead or startup)" >&2
		exit 2
		;;
	esac
done
echo
echo "load average at the end: $(loadavg)"
