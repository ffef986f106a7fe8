# Shared setup of the serve benchmarks (sourced by run.sh and profile.sh):
# a work directory $TMP with HOME and XDG_CONFIG_HOME inside it, the
# binaries in $TMP/bin, a benign 1 KiB file in $TMP/data, and helpers.
# Requires the repository root as the working directory.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentmesh-serve-bench.XXXXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	if [ "${KEEP:-}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# build: agentmesh and the benchmark programs into $TMP/bin.
build() {
	echo "== build ($(go version | cut -d' ' -f3), $(nproc) CPUs, load average $(loadavg))"
	go build -o "$TMP/bin/agentmesh" ./cmd/agentmesh
	for t in plainserver startup overhead loadgen perfsum; do
		go build -o "$TMP/bin/$t" "./scripts/bench/serve/$t"
	done
}

# make_data: a benign 1 KiB text file, $TMP/data/bench.txt: nothing the
# secret detectors or the default policy's redact rule (output containing
# 'password' or 'api_key') match, so every call is "allowed" unredacted.
make_data() {
	mkdir -p "$TMP/data"
	for i in $(seq -w 0 99); do
		echo "The quick brown fox jumps over the lazy dog; benchmark line $i."
	done >"$TMP/data/lines.txt"
	head -c 1023 "$TMP/data/lines.txt" >"$TMP/data/bench.txt"
	echo >>"$TMP/data/bench.txt"
	rm "$TMP/data/lines.txt"
	[ "$(wc -c <"$TMP/data/bench.txt")" -eq 1024 ]
}

# config DIR SYNC: an agentmesh.yaml in DIR (state in DIR/.agentmesh, home
# in DIR/home) serving $TMP/data at /data with the embedded default policy
# and audit synchronous=SYNC (full or normal).
# config DIR SYNC [BATCH_WINDOW]: agentmesh.yaml with audit synchronous
# SYNC (full, normal) and batch_window (default 0s: every call waits for
# its commit).
config() {
	mkdir -p "$1/home/.config"
	cat >"$1/agentmesh.yaml" <<EOF
agent: {name: bench, sponsor: bench@example.com}
policies: {paths: []}
audit: {synchronous: $2, batch_window: ${3:-0s}}
tools:
  filesystem:
    roots: [{path: $TMP/data, mount: /data, access: read}]
EOF
}

# am DIR ARGS...: agentmesh with DIR's config, home and XDG_CONFIG_HOME.
am() {
	local dir=$1
	shift
	env -u AGENTMESH_STATE_DIR -u AGENTMESH_CONFIG -u AGENTMESH_DATABASE_URL HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" \
		"$TMP/bin/agentmesh" --config "$dir/agentmesh.yaml" "$@"
}

# start_agentmesh_http DIR: agentmesh serve --http on a free loopback port
# in the background; sets server_pid (agentmesh's own pid: env execs it)
# and url.
start_agentmesh_http() {
	: >"$1/serve.err"
	env -u AGENTMESH_STATE_DIR -u AGENTMESH_CONFIG -u AGENTMESH_DATABASE_URL HOME="$1/home" XDG_CONFIG_HOME="$1/home/.config" \
		"$TMP/bin/agentmesh" --config "$1/agentmesh.yaml" serve --http 127.0.0.1:0 --quiet 2>"$1/serve.err" &
	server_pid=$!
	url=$(listen "$1/serve.err")
}

# start_plain_http: plainserver -http on a free loopback port; sets
# server_pid and url.
start_plain_http() {
	: >"$TMP/plain.err"
	"$TMP/bin/plainserver" -root "$TMP/data" -http 127.0.0.1:0 2>"$TMP/plain.err" &
	server_pid=$!
	url=$(listen "$TMP/plain.err")
}

# listen ERRFILE: waits for "listening on http://ADDR/mcp" in ERRFILE and
# prints the URL.
listen() {
	local u
	for _ in $(seq 100); do
		u=$(sed -n 's|.*listening on \(http://[^ ]*/mcp\).*|\1|p' "$1")
		if [ -n "$u" ]; then echo "$u"; return; fi
		sleep 0.1
	done
	echo "server did not start:" >&2
	cat "$1" >&2
	return 1
}

stop_server() {
	kill -TERM "$server_pid"
	wait "$server_pid" || true
	server_pid=
}

# audit_check DIR: the newest audit entry (an allowed filesystem_read), a
# summary of every tool call in the log (results; duration_us, the
# pipeline's own time before the audit append, as agentmesh recorded it)
# and a full verification of the log.
audit_check() {
	echo "-- audit of $1: newest entry, summary of the tool calls, verify"
	am "$1" audit --limit 1 --output jsonl
	am "$1" audit --limit 0 --tool filesystem_read --output jsonl | jq -s -r '
		(map(.duration_us) | sort) as $d | def p(q): $d[(($d | length) * q | floor)];
		"\(length) filesystem_read entries; results: \(group_by(.result) | map("\(.[0].result) \(length)") | join(", "));" +
		" duration_us before the append: p50 \(p(0.5)) p90 \(p(0.9)) p99 \(p(0.99)) max \($d[-1])"'
	am "$1" audit verify
}
