#!/usr/bin/env bash
# Governance at the cost of the transport: every comparison of
# docs/benchmarks.md ("Governance at the cost of the transport") in one
# command, each side by side with its yardstick in the same run, ending
# with one table of ratios against the targets.
#
#   proxy      server-everything's echo over stdio, directly and through
#              agentmesh serve (durable, synchronous=normal, batch_window=5ms);
#              over streamable HTTP against supergateway; throughput
#              (scripts/bench/proxy/run.sh)
#   serve      filesystem_read of 1 KiB over stdio through agentmesh
#              (durable, batched) vs the plain mcp-go server with the same
#              tool; 16 HTTP sessions' calls/s; start → initialize
#              (scripts/bench/serve/run.sh)
#   verify     audit verify of a 1,000,000-entry log vs sha256sum over the
#              entries' bytes; --incremental over 10,000 new entries
#
# Usage: scripts/bench/compare.sh [proxy] [serve] [verify]   (default: all)
# Knobs: ROUNDS=20 CALLS=100 (proxy), BLOCKS=20 CALLS_SERVE=200 (serve),
#   N=1000000 (verify), MAX_LOAD (wait for a quieter machine first).
# Every number comes with the load average at the time: on this project's
# 2-core machines a loaded machine's numbers are not the software's.
set -euo pipefail
cd "$(dirname "$0")/../.."
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(proxy serve verify)
work=$(mktemp -d /tmp/agentmesh-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
summary="$work/summary.tsv"
: >"$summary"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# row WHAT OURS REFERENCE RATIO TARGET
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$summary"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'; }

if [ -n "${MAX_LOAD:-}" ]; then
	for _ in $(seq 10); do
		awk -v m="$MAX_LOAD" '{ exit !($1 <= m) }' /proc/loadavg && break
		echo "load average $(loadavg) above $MAX_LOAD: waiting 60 s" >&2
		sleep 60
	done
fi
echo "== compare.sh at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average $(loadavg)"

for w in "${what[@]}"; do
	case $w in
	proxy)
		REPORT="$work/proxy.md" scripts/bench/proxy/run.sh --rounds "${ROUNDS:-20}" --calls "${CALLS:-100}" | tee "$work/proxy.out"
		# | target | calls | p50 | ... | ratio p50 | ...  (stdio table)
		p50() { awk -F'|' -v t="$1" 'index($2, t) == 2 { gsub(/ /, "", $4); print $4; exit }' "$work/proxy.md"; }
		direct=$(p50 'direct (stdio)')
		for mode in 'synchronous: full' 'synchronous: normal' 'batch_window: 5ms'; do
			ours=$(p50 "agentmesh ($mode)")
			row "stdio echo via server-everything, $mode, p50 ms" "$ours" "$direct (direct)" "$(ratio "$ours" "$direct")×" \
				"$(case $mode in *full*) echo "added ≤ fsync + 0.15 ms" ;; *5ms*) echo "≤ 1.6×" ;; *) echo "–" ;; esac)"
		done
		sg=$(awk -F'|' 'index($2, " supergateway") == 1 { gsub(/ /, "", $4); print $4; exit }' "$work/proxy.md")
		for mode in 'synchronous: full' 'batch_window: 5ms'; do
			ours=$(p50 "agentmesh --http ($mode)")
			row "HTTP echo, $mode, p50 ms" "$ours" "$sg (supergateway)" "$(ratio "$ours" "$sg")×" "≤ 0.6×"
		done
		;;
	serve)
		BLOCKS=${BLOCKS:-20} CALLS=${CALLS_SERVE:-200} scripts/bench/serve/run.sh startup overhead throughput | tee "$work/serve.out"
		plain=$(awk '/^plain \(ungoverned/ { print $5; exit }' "$work/serve.out")
		for mode in full batched; do
			ours=$(awk -v m="$mode" '$1 == "agentmesh" && $2 == m && $3 ~ /^[0-9]+$/ { print $4; exit }' "$work/serve.out")
			row "filesystem_read 1 KiB stdio, $mode, p50 ms" "$ours" "$plain (plain mcp-go)" "$(ratio "$ours" "$plain")×" \
				"$([ $mode = full ] && echo "≤ 3×" || echo "≤ 1.15×")"
		done
		# throughput: the "calls N in S s = R calls/s" line after each "== throughput" header
		tput() { awk -v t="$1" '/^== throughput/ { cur = ($0 ~ t) } cur && /calls\/s/ { for (i = 1; i <= NF; i++) if ($i == "calls/s;") { print $(i-1); exit } }' "$work/serve.out"; }
		pt=$(tput 'plainserver')
		ft=$(tput 'audit full')
		row "HTTP 16 sessions filesystem_read, durable, calls/s" "$ft" "$pt (plain mcp-go)" "$(ratio "$ft" "$pt")×" "≥ 0.8×"
		sw=$(awk '/^agentmesh warm/ { f = 1 } f && /initialize response/ { print $6; exit }' "$work/serve.out")
		sp=$(awk '/^plainserver/ { f = 1 } f && /initialize response/ { print $6; exit }' "$work/serve.out")
		row "serve start → initialize reply, p50 ms" "$sw" "$sp (plain mcp-go)" "$(ratio "$sw" "$sp")×" "≤ 1.5×"
		;;
	verify)
		n=${N:-1000000}
		go build -o "$work/agentmesh" ./cmd/agentmesh
		go build -o "$work/auditfill" ./scripts/bench/auditfill
		(
			unset AGENTMESH_DATABASE_URL
			export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" AGENTMESH_STATE_DIR="$work/state"
			mkdir -p "$HOME"
			echo "== verify: filling a $n-entry log (load average $(loadavg))"
			"$work/auditfill" -state "$work/state" -n "$n"
			"$work/agentmesh" audit export --format jsonl >"$work/entries.jsonl"
			best() { sort -n | head -1; }
			secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
			sha=$(for _ in 1 2 3; do secs sha256sum "$work/entries.jsonl"; done | best)
			full=$(for _ in 1 2 3; do secs "$work/agentmesh" audit verify; done | best)
			echo "sha256sum over the entries ($(stat -c %s "$work/entries.jsonl") bytes): ${sha} s; audit verify: ${full} s (best of 3; load average $(loadavg))"
			"$work/auditfill" -state "$work/state" -n 10000 -sync full
			inc=$(for _ in 1 2 3 4 5; do secs "$work/agentmesh" audit verify --incremental; done | best)
			echo "audit verify --incremental over 10000 new entries: ${inc} s (best of 5, whole process; load average $(loadavg))"
			printf '%s\n' "$sha" "$full" "$inc" >"$work/verify.out"
		)
		read -r sha full inc < <(paste -sd' ' "$work/verify.out")
		row "audit verify, $n entries, s" "$full" "$sha (sha256sum of the entries)" "$(ratio "$full" "$sha")×" "≤ 2.5×"
		row "audit verify --incremental, 10k new, s (whole process)" "$inc" "–" "–" "≤ 0.040 s"
		;;
	*)
		echo "unknown comparison $w (want proxy, serve or verify)" >&2
		exit 2
		;;
	esac
done

echo
echo "== summary (load average at the end $(loadavg))"
{
	printf 'comparison\tagentmesh\tyardstick\tratio\ttarget\n'
	cat "$summary"
} | column -t -s $'\t'
