#!/usr/bin/env bash
# Benchmarks of `agentmesh serve` (docs/benchmarks-serve.md):
#   startup     process start → initialize response; RSS before and after the
#               first call (which loads the secret detectors); plainserver as
#               the floor
#   overhead    per-call latency over stdio through agentmesh (audit
#               synchronous=full, =normal, and batch_window=5ms) vs the ungoverned mcp-go
#               plainserver, one client, alternating blocks
#   throughput  16 streamable HTTP sessions for a fixed duration against
#               agentmesh (full; full with every caller authenticated by an
#               API key, auth.api_keys; normal; batched) and plainserver
#
# Usage: scripts/bench/serve/run.sh [startup] [overhead] [throughput]   (default: all)
# Knobs (environment): TARGETS="full auth normal batched plain" (throughput) STARTUP_RUNS=30 COLD_RUNS=5 BLOCKS=20 CALLS=200
#   WARMUP=300 SESSIONS=16 DURATION=10s PROTOCOL= (e.g. 2025-11-25 pins the
#   initialize-handshake protocol; default: the mcp-go client negotiates)
#   KEEP=1 (keep the work directory)
# Everything runs in a temporary directory with HOME and XDG_CONFIG_HOME
# inside it; loopback only. The machine's load average is printed with every
# measurement: on a loaded machine the numbers are not the software's.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/bench/serve/lib.sh

STARTUP_RUNS=${STARTUP_RUNS:-30} COLD_RUNS=${COLD_RUNS:-5}
BLOCKS=${BLOCKS:-20} CALLS=${CALLS:-200} WARMUP=${WARMUP:-300}
SESSIONS=${SESSIONS:-16} DURATION=${DURATION:-10s} PROTOCOL=${PROTOCOL:-}
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(startup overhead throughput)

build
make_data
for w in "${what[@]}"; do
	case $w in
	startup)
		echo
		echo "== startup: $STARTUP_RUNS warm and $COLD_RUNS cold starts of agentmesh serve --config CFG --quiet (stdio)"
		config "$TMP/startup" full
		"$TMP/bin/startup" -bin "$TMP/bin/agentmesh" -config "$TMP/startup/agentmesh.yaml" -expect "$TMP/data/bench.txt" \
			-n "$STARTUP_RUNS" -cold "$COLD_RUNS" -work "$TMP/startup-cold" -plain "$TMP/bin/plainserver" -data "$TMP/data"
		if command -v hyperfine >/dev/null; then
			echo "-- cross-check (hyperfine): a whole stdio session that only initializes: start, initialize, EOF, audit flush, exit"
			printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"hyperfine","version":"1"}}}' >"$TMP/init.jsonl"
			HOME="$TMP/startup/home" XDG_CONFIG_HOME="$TMP/startup/home/.config" hyperfine --warmup 3 --runs "$STARTUP_RUNS" --style basic \
				"$TMP/bin/agentmesh --config $TMP/startup/agentmesh.yaml serve --quiet <$TMP/init.jsonl" \
				"$TMP/bin/plainserver -root $TMP/data <$TMP/init.jsonl"
		fi
		;;
	overhead)
		echo
		echo "== overhead: filesystem_read of a 1 KiB file over stdio, governed vs plain"
		config "$TMP/stdio-full" full
		config "$TMP/stdio-normal" normal
		config "$TMP/stdio-batched" full 5ms
		"$TMP/bin/overhead" -agentmesh "$TMP/bin/agentmesh" -gov "full=$TMP/stdio-full/agentmesh.yaml" \
			-gov "normal=$TMP/stdio-normal/agentmesh.yaml" -gov "batched=$TMP/stdio-batched/agentmesh.yaml" \
			-plain "$TMP/bin/plainserver" -data "$TMP/data" \
			-expect "$TMP/data/bench.txt" -n "$CALLS" -blocks "$BLOCKS" -warmup "$WARMUP" ${PROTOCOL:+-protocol "$PROTOCOL"}
		audit_check "$TMP/stdio-full"
		;;
	throughput)
		for target in ${TARGETS:-full auth normal batched plain}; do
			echo
			if [ $target = plain ]; then
				echo "== throughput: plainserver -http 127.0.0.1:0 (ungoverned), $SESSIONS sessions, $DURATION"
				start_plain_http
			else
				echo "== throughput: agentmesh serve --http 127.0.0.1:0 --quiet (audit $target), $SESSIONS sessions, $DURATION"
				bearer=
				case $target in
				batched) config "$TMP/http-$target" full 5ms ;;
				auth)
					config "$TMP/http-$target" full
					echo "auth: {api_keys: true}" >>"$TMP/http-$target/agentmesh.yaml"
					am "$TMP/http-$target" identity create --name bench --sponsor bench@example.com >/dev/null 2>&1
					bearer=$(am "$TMP/http-$target" keys create --caller bench 2>/dev/null)
					;;
				*) config "$TMP/http-$target" $target ;;
				esac
				start_agentmesh_http "$TMP/http-$target"
			fi
			"$TMP/bin/loadgen" -url "$url" -expect "$TMP/data/bench.txt" -sessions "$SESSIONS" -duration "$DURATION" \
				-pid "$server_pid" ${PROTOCOL:+-protocol "$PROTOCOL"} ${bearer:+-bearer "$bearer"}
			stop_server
			if [ $target != plain ]; then audit_check "$TMP/http-$target"; fi
		done
		;;
	*)
		echo "unknown benchmark $w (want startup, overhead or throughput)" >&2
		exit 2
		;;
	esac
done
echo
echo "load average at the end: $(loadavg)"
