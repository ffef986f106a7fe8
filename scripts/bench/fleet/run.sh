#!/usr/bin/env bash
# The fleet benchmark of issue 15 (docs/benchmarks.md, "Fleet on
# PostgreSQL"): HTTP throughput of `agentmesh serve --http` with its state
# in one PostgreSQL database and 1, 2, 3 replicas, side by side with a
# single server on SQLite, in one run. Every configuration gets the same
# load: SESSIONS streamable HTTP sessions calling filesystem_read (1 KiB)
# for DURATION (loadgen), spread round-robin over the replicas. Both
# backends commit durably (SQLite synchronous=full; PostgreSQL fsync and
# synchronous_commit on) and group-commit inside each process.
#
# Per configuration it prints loadgen's report (calls/s, p50/p99, the
# replicas' CPU and RSS, the PostgreSQL server's CPU: postmaster and all
# its children, and how much of the machine other processes took), the
# entries and commits the run added to the log (each commit stores one row
# of audit_checkpoints, on both backends) and PostgreSQL's transactions,
# and then verifies the log with `agentmesh audit verify`: a log that does
# not verify, or a call that failed, fails the script. A table of all
# configurations ends the run.
#
# Usage: scripts/bench/fleet/run.sh
# Knobs (environment): SESSIONS=12 DURATION=20s REPLICAS="1 2 3"
#   ROUNDS=1 (repeat the whole sequence, for run-to-run noise)
#   KEEP=1 (keep the work directory; the PostgreSQL cluster is always removed)
#   PG_BIN (PostgreSQL binaries, see scripts/pg-test-env)
# Each PostgreSQL configuration runs in a fresh schema of a throwaway
# cluster that scripts/pg-test-env starts on 127.0.0.1 and the exit trap
# stops. All replicas of a configuration share one state directory, so one
# identity signs for the fleet. The machine's load average is printed with
# every measurement: on a loaded machine the numbers are not the software's.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/bench/serve/lib.sh

SESSIONS=${SESSIONS:-12} DURATION=${DURATION:-20s} REPLICAS=${REPLICAS:-1 2 3} ROUNDS=${ROUNDS:-1}
unset AGENTMESH_DATABASE_URL AGENTMESH_STATE_DIR AGENTMESH_CONFIG

pids=()   # running replicas
pg_dir=   # the throwaway cluster
failed=0
fleet_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	if [ -n "$pg_dir" ]; then scripts/pg-test-env stop "$pg_dir" || true; fi
	cleanup
}
trap fleet_cleanup EXIT

echo "== build ($(go version | cut -d' ' -f3), $(nproc) CPUs, load average $(loadavg))"
go build -o "$TMP/bin/agentmesh" ./cmd/agentmesh
go build -o "$TMP/bin/loadgen" ./scripts/bench/serve/loadgen
make_data

echo "== PostgreSQL: scripts/pg-test-env start"
pg_env=$(scripts/pg-test-env start)
pg_url=$(sed -n 's/^AGENTMESH_TEST_DATABASE_URL=//p' <<<"$pg_env")
pg_dir=$(sed -n 's/^AGENTMESH_PG_TEST_DIR=//p' <<<"$pg_env")
pg_pid=$(head -n 1 "$pg_dir/data/postmaster.pid") # loadgen -dbpid: the server's CPU
echo "$(psql -X -At "$pg_url" -c 'SELECT version()' | cut -d, -f1); fsync $(psql -X -At "$pg_url" -c 'SHOW fsync'), synchronous_commit $(psql -X -At "$pg_url" -c 'SHOW synchronous_commit')"

# sql QUERY: one value from the benchmark database.
sql() { psql -X -At -v ON_ERROR_STOP=1 "$pg_url" -c "$1"; }
pg_db=$(sql 'SELECT current_database()')

# counts BACKEND WHERE: "ENTRIES COMMITS" of a log (WHERE: the SQLite
# database file, or the PostgreSQL schema).
counts() {
	local out
	case $1 in
	sqlite) out=$(sqlite3 "$2" 'SELECT (SELECT count(*) FROM audit_entries), (SELECT count(*) FROM audit_checkpoints)') ;;
	postgres) out=$(sql "SELECT (SELECT count(*) FROM $2.audit_entries), (SELECT count(*) FROM $2.audit_checkpoints)") ;;
	esac
	if ! [[ ${out:-} =~ ^[0-9]+\|[0-9]+$ ]]; then
		echo "counting the entries of the $1 log in $2 failed: ${out:-no answer}" >&2
		return 1
	fi
	echo "${out/|/ }"
}

# stop_replicas: SIGTERM every replica and wait for each.
stop_replicas() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p"; done
	for p in "${pids[@]}"; do wait "$p" || true; done
	pids=()
}

# show_stderr DIR...: what the replicas said besides "listening on".
show_stderr() {
	local d
	for d in "$@"; do
		if grep -v 'listening on' "$d/serve.err" | grep -q .; then
			echo "-- stderr of $d:"
			grep -v 'listening on' "$d/serve.err" | tail -n 20
		fi
	done
}

# pg_xacts: transactions committed and rolled back in the benchmark
# database so far (pg_stat_database; a backend reports its own when it
# exits at the latest).
pg_xacts() { sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }

# start_sampler OUT: in the background (sets sampler, psql's pid), every
# 40 ms, what each busy backend of the benchmark database is doing
# (pg_stat_activity: wait event, or CPU, and the statement), each sample
# headed "sample". It connects to the database postgres, so that its own
# transactions are not counted with the benchmark's.
start_sampler() {
	local q="SELECT 'sample' UNION ALL SELECT coalesce(wait_event_type || ':' || wait_event, CASE state WHEN 'active' THEN 'CPU' ELSE '-' END) || ' | ' || state || ' | '
		|| left(regexp_replace(query, '\s+', ' ', 'g'), 45) FROM pg_stat_activity WHERE datname = '$pg_db'
		AND backend_type = 'client backend' AND state <> 'idle';"
	psql -X -At -q "${pg_url/\/$pg_db\?//postgres?}" -f <(yes "$q SELECT pg_sleep(0.04);") >"$1" 2>/dev/null &
	sampler=$!
}

# waits OUT: the most frequent backend states in OUT, and the mean number
# of backends waiting for a heavyweight lock (the tree row's, mostly).
waits() {
	local n
	n=$(grep -c '^sample$' "$1" || true)
	echo "-- PostgreSQL backends over $n samples (pg_stat_activity every 40 ms): count, wait event or CPU | state | statement"
	grep -v '^sample$' "$1" | grep . | sort | uniq -c | sort -rn | head -n 8
	lockwait=$(awk -v n="$n" '/^Lock:/ { w++ } END { if (n > 0) printf "%.2f", w / n; else print "?" }' "$1")
	echo "-- backends waiting for a lock: $lockwait on average"
}

# prepare NAME BACKEND N: N replica directories $base/r1.. sharing the
# state directory $base/state (one identity for the fleet, created here
# before any replica starts); on PostgreSQL a fresh schema NAME named in
# their state.database. Sets dirs and where (the SQLite file or the schema).
prepare() {
	local name=$1 backend=$2 n=$3 i out
	base="$TMP/$name" dirs=()
	for i in $(seq "$n"); do
		dirs+=("$base/r$i")
		config "$base/r$i" full
		echo "state_dir: $base/state" >>"$base/r$i/agentmesh.yaml"
		if [ "$backend" = postgres ]; then
			printf 'state:\n  database: "%s&search_path=%s"\n' "$pg_url" "$name" >>"$base/r$i/agentmesh.yaml"
		fi
	done
	if [ "$backend" = postgres ]; then
		sql "CREATE SCHEMA $name" >/dev/null
		where=$name
	else
		where=$base/state/agentmesh.db
	fi
	if ! out=$(am "${dirs[0]}" identity create --name bench --sponsor bench@example.com 2>&1); then
		echo "$out" >&2
		return 1
	fi
}

# snapshot BACKEND: "ENTRIES COMMITS PGXACTS" now (PGXACTS 0 for SQLite).
snapshot() {
	if [ "$1" = postgres ]; then
		echo "$(counts "$1" "$where") $(pg_xacts)"
	else
		echo "$(counts "$1" "$where") 0"
	fi
}

summary=()

# measure NAME BACKEND N: one configuration, from fresh directories (and
# schema) to a verified log. The log's counts and PostgreSQL's
# transactions are taken once the replicas listen and again once they
# exited: the window is loadgen's session set-up, warm-up and timed period.
measure() {
	local name=$1 backend=$2 n=$3 base dirs where urls=() d load status=0
	load=$(loadavg)
	echo
	echo "== $name: $n × agentmesh serve --http 127.0.0.1:0 --quiet on $backend, $SESSIONS sessions round-robin, $DURATION (load average $load)"
	prepare "$name" "$backend" "$n"
	for d in "${dirs[@]}"; do
		start_agentmesh_http "$d"
		pids+=("$server_pid")
		urls+=("$url")
	done
	local e0 c0 x0 e1 c1 x1 dbpid=() sampler= lockwait=— out="$TMP/$name.loadgen"
	read -r e0 c0 x0 <<<"$(snapshot "$backend")"
	if [ "$backend" = postgres ]; then
		dbpid=(-dbpid "$pg_pid")
		start_sampler "$TMP/$name.waits"
	fi
	"$TMP/bin/loadgen" -url "$(IFS=,; echo "${urls[*]}")" -pid "$(IFS=,; echo "${pids[*]}")" "${dbpid[@]}" \
		-expect "$TMP/data/bench.txt" -sessions "$SESSIONS" -duration "$DURATION" | tee "$out" || status=$?
	if [ -n "$sampler" ]; then
		kill "$sampler" 2>/dev/null || true
		wait "$sampler" 2>/dev/null || true
		waits "$TMP/$name.waits"
	fi
	stop_replicas
	read -r e1 c1 x1 <<<"$(snapshot "$backend")"
	show_stderr "${dirs[@]}"
	if [ $status -ne 0 ]; then
		echo "FAIL: $name: loadgen exited $status (calls failed; see above)" >&2
		failed=1
	fi
	local per xpc=—
	per=$(awk -v e=$((e1 - e0)) -v c=$((c1 - c0)) 'BEGIN { if (c > 0) printf "%.2f", e / c; else print "—" }')
	echo "-- log: $((e1 - e0)) entries in $((c1 - c0)) commits = $per entries/commit"
	if [ "$backend" = postgres ]; then
		xpc=$(awk -v x=$((x1 - x0)) -v e=$((e1 - e0)) 'BEGIN { printf "%.2f", x / e }')
		echo "-- PostgreSQL: $((x1 - x0)) transactions = $xpc per entry (pg_stat_database)"
	fi
	echo "-- agentmesh audit verify ($backend)"
	if ! am "${dirs[0]}" audit verify; then
		echo "FAIL: $name: the audit log does not verify" >&2
		failed=1
	fi
	if [ "$backend" = postgres ]; then PGOPTIONS=--client-min-messages=warning sql "DROP SCHEMA $name CASCADE" >/dev/null; fi
	summary+=("| $name | $(row "$out") | $((e1 - e0)) / $((c1 - c0)) = $per | $xpc | $lockwait | $load |")
}

# row LOADGEN-OUTPUT: "calls/s | p50 | p99 | replicas' CPU µs/call |
# PostgreSQL's CPU µs/call | both | other processes' cores".
row() {
	local cps p50 p99 cpu db other
	cps=$(sed -n 's/^  calls .* = \([0-9]*\) calls\/s.*/\1/p' "$1")
	p50=$(sed -n 's/.*latency ms: p50 \([0-9.]*\) .*/\1/p' "$1")
	p99=$(sed -n 's/.*latency ms: .* p99 \([0-9.]*\) .*/\1/p' "$1")
	cpu=$(sed -n 's/^  server CPU .* = \([0-9.]*\) µs\/call.*/\1/p' "$1")
	db=$(sed -n 's/^  database CPU .* = \([0-9.]*\) µs\/call.*/\1/p' "$1")
	other=$(sed -n 's/.*other processes ≈ \([0-9.]*\).*/\1/p' "$1")
	echo "${cps:-?} | ${p50:-?} | ${p99:-?} | ${cpu:-?} | ${db:-—} | $(awk -v a="${cpu:-0}" -v b="${db:-0}" 'BEGIN { printf "%.0f", a + b }') | ${other:-?}"
}

for round in $(seq "$ROUNDS"); do
	measure "sqlite_$round" sqlite 1
	for n in $REPLICAS; do
		measure "pg${n}_$round" postgres "$n"
	done
done

echo
echo "== summary: $SESSIONS sessions, $DURATION each ($(nproc) CPUs)"
echo "| configuration | calls/s | p50 ms | p99 ms | replicas' CPU µs/call | PostgreSQL CPU µs/call | together µs/call | other processes (cores) | entries / commits = per commit | PostgreSQL transactions/entry | backends waiting for a lock | load average before |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
printf '%s\n' "${summary[@]}"
echo
echo "load average at the end: $(loadavg)"
if [ $failed -ne 0 ]; then
	echo "FAIL: see the messages above" >&2
	exit 1
fi
