#!/usr/bin/env bash
# Measures Trent against baselines taken on the same machine in the same run,
# and prints the ratios the project targets plus a markdown table for
# BENCHMARKS.md. Absolute rates drift between runs and machines; the ratios
# are what to compare.
#
# Trent serves only mutual TLS 1.3, so the gRPC baseline does too: a
# throwaway CA in the temporary directory issues the baseline server a node
# certificate and the load driver a client certificate. The Trent runs use
# the dev cluster's admin certificate.
#
#   scripts/bench.sh
#
# Environment:
#   BENCH_DURATION      measured time of each benchmark (default 10s)
#   BENCH_WARMUP        unmeasured time before each (default 2s)
#   BENCH_CONCURRENCY   concurrency of the main benchmarks (default 64)
#   BENCH_HSM           soft|softhsm, the cluster's HSM (default soft)
#   BENCH_SKIP_CLUSTER  1 to measure the baselines only
#   BENCH_AUDIT_SYNC_INTERVAL  kmsd -audit-sync-interval of the unscored
#                       Encrypt row with another audit sync setting (default
#                       0: each record synced before its answer)
#   BENCH_SKIP_REPLICATION  1 to skip the replication figures
#   BENCH_PARTITION     partition of the catch-up figure (default 30s)
#   KMSD                a prebuilt kmsd to use instead of building one
#
# Exits 1 if a benchmark could not run; a missed target is reported, not
# failed on, since a shared machine's noise can miss one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
concurrency=${BENCH_CONCURRENCY:-64}
hsm=${BENCH_HSM:-soft}
skip_cluster=${BENCH_SKIP_CLUSTER:-0}
audit_interval=${BENCH_AUDIT_SYNC_INTERVAL:-0}

work=$(mktemp -d "${TMPDIR:-/tmp}/trent-bench.XXXXXX")
baseline_pids=()
cluster_dir=

# stop_baselines stops the baseline servers still running.
stop_baselines() {
	local pid
	for pid in "${baseline_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${baseline_pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	baseline_pids=()
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	stop_baselines
	if [[ -n $cluster_dir ]]; then
		scripts/dev-cluster.sh down "$cluster_dir" || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# Bash skips the EXIT trap when a signal kills it; exiting runs it.
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "bench: $*" >&2; }

say "building into $work/bin"
go build -o "$work/bin/kmsbench" ./cmd/kmsbench
go build -o "$work/bin/kmsctl" ./cmd/kmsctl
kmsbench=$work/bin/kmsbench
kmsctl=$work/bin/kmsctl
kmsd=${KMSD:-}
if [[ $skip_cluster != 1 && -z $kmsd ]]; then
	if ! go build -o "$work/bin/kmsd" ./cmd/kmsd; then
		say "kmsd does not build; BENCH_SKIP_CLUSTER=1 measures the baselines alone"
		exit 1
	fi
	kmsd=$work/bin/kmsd
fi

# json_field FILE NAME prints a number field of kmsbench's flat JSON result,
# json_string FILE NAME a string field, escapes left as they are. A NAME
# inside a JSON string has its quotes escaped, so '"NAME":' only matches the
# field.
json_field() {
	sed -n 's/.*"'"$2"'":\([-0-9.eE+]*\).*/\1/p' "$1"
}
json_string() {
	sed -n 's/.*"'"$2"'":"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$1"
}

failed=0
declare -a rows=()

# measure NAME TITLE KMSBENCH_ARGS... runs one benchmark into $work/NAME.json
# and adds a table row; a run that fails is reported and the others go on.
measure() {
	local name=$1 title=$2
	shift 2
	say "measuring $title"
	if ! "$@" -json -label "$name" -duration "$duration" -warmup "$warmup" >"$work/$name.json"; then
		say "$title: failed"
		failed=1
	fi
	if [[ ! -s $work/$name.json ]]; then
		rows+=("| $title | | | | | failed |")
		return
	fi
	local f=$work/$name.json
	printf '%-34s rate=%s/s p50=%sms p99=%sms errors=%s\n' "$title" \
		"$(num 1 "$(json_field "$f" rate)")" "$(num 3 "$(json_field "$f" p50_ms)")" \
		"$(num 3 "$(json_field "$f" p99_ms)")" "$(json_field "$f" errors)"
	local first_error
	first_error=$(json_string "$f" first_error)
	if [[ -n $first_error ]]; then
		echo "    first error: $first_error"
	fi
	rows+=("| $title | $(json_field "$f" concurrency) | $(num 0 "$(json_field "$f" rate)") | $(num 3 "$(json_field "$f" p50_ms)") | $(num 3 "$(json_field "$f" p99_ms)") | $(json_field "$f" errors) |")
}

num() { awk -v d="$1" -v v="$2" 'BEGIN { if (v == "") print "-"; else printf "%.*f\n", d, v }'; }

declare -a ratio_rows=()

# ratio TITLE NAME_A FIELD_A NAME_B FIELD_B OP TARGET checks A/B OP TARGET,
# OP being >= or <=.
ratio() {
	local title=$1 a b value verdict
	a=$(json_field "$work/$2.json" "$3" 2>/dev/null || true)
	b=$(json_field "$work/$4.json" "$5" 2>/dev/null || true)
	local op=$6 target=$7
	value=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }')
	if [[ $value == n/a ]]; then
		verdict=n/a
	else
		verdict=$(awk -v v="$value" -v t="$target" -v op="$op" \
			'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "PASS" : "MISS" }')
	fi
	printf '%-44s %5s  (target %s %s)  %s\n' "$title" "$value" "$op" "$target" "$verdict"
	ratio_rows+=("| $title | $value | $op $target | $verdict |")
}

# info_ratio TITLE NAME_A FIELD_A NAME_B FIELD_B prints A/B with no target.
info_ratio() {
	local title=$1 a b value
	a=$(json_field "$work/$2.json" "$3" 2>/dev/null || true)
	b=$(json_field "$work/$4.json" "$5" 2>/dev/null || true)
	value=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }')
	printf '%-44s %5s  (no target)\n' "$title" "$value"
	ratio_rows+=("| $title | $value | - | info |")
}

# Certificates for the gRPC baseline; nothing of them is printed.
tls=$work/tls
"$kmsctl" ca init "$tls/ca" --name "Trent bench CA" >/dev/null
"$kmsctl" ca issue-node --ca "$tls/ca" --region bench --node-id baseline --host 127.0.0.1 \
	--out "$tls/baseline-server" >/dev/null
"$kmsctl" ca issue-client --ca "$tls/ca" --principal bench --out "$tls/client" >/dev/null

# wait_ready PID LOG WHAT SECONDS prints the endpoints of the ready line the
# server PID writes to LOG, or fails if it exits or takes longer than SECONDS.
wait_ready() {
	local pid=$1 log=$2 what=$3 deadline=$((SECONDS + $4)) addr
	until addr=$(sed -n 's/^ready grpc=//p' "$log") && [[ -n $addr ]]; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
			say "$what did not start:"
			cat "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$addr"
}

# settle flushes what the last benchmark left to write back (its Raft logs,
# the directories it removed), so that the next one does not pay for it.
settle() {
	sync
	sleep 2
}

# The baselines run alone on the machine, before any kmsd starts.
# The baseline runs with the garbage-collector setting kmsd uses by default
# (GOGC=400, see cmd/kmsd/main.go), so the ratio measures Trent's work, not a
# runtime setting.
# start_bare N starts the baseline server for the Nth time into
# $work/bare-N.log and prints its endpoint. Call it with its output
# redirected, not inside $(...): a subshell would keep the pid it adds to
# baseline_pids from this shell, and the server would outlive the run.
start_bare() {
	GOGC=${GOGC:-400} "$kmsbench" baseline-server -addr 127.0.0.1:0 -tls-dir "$tls/baseline-server" \
		>"$work/bare-$1.log" 2>&1 &
	baseline_pids+=("$!")
	wait_ready "$!" "$work/bare-$1.log" "baseline server" 10
}
start_bare 1 >"$work/bare-1.addr" || exit 1
bare_addr=$(<"$work/bare-1.addr")
# The baseline server has no CreateKey: name a key so kmsbench makes none.
measure bare-c64 "bare gRPC+TLS Encrypt c=$concurrency" "$kmsbench" -endpoints "$bare_addr" -key-id baseline \
	-tls-dir "$tls/client" -op encrypt -size 32 -concurrency "$concurrency"
measure bare-c1 "bare gRPC+TLS Encrypt c=1" "$kmsbench" -endpoints "$bare_addr" -key-id baseline \
	-tls-dir "$tls/client" -op encrypt -size 32 -concurrency 1
# Encrypt's baseline: the same bare server as three processes, with the
# clients spread over them as over Trent's three nodes, so that both sides
# of the ratio pay what three server processes sharing the cores cost and
# the ratio measures Trent's own work on the request path (as CreateKey's
# baseline is Raft measured the same way). The single bare server above is
# printed beside it, without a target.
bare3_endpoints=$bare_addr
for n in 2 3; do
	start_bare "$n" >"$work/bare-$n.addr" || exit 1
	bare3_endpoints+=,$(<"$work/bare-$n.addr")
done
measure bare3-c64 "bare gRPC+TLS Encrypt, 3 processes c=$concurrency" "$kmsbench" -endpoints "$bare3_endpoints" \
	-key-id baseline -tls-dir "$tls/client" -op encrypt -size 32 -concurrency "$concurrency"
stop_baselines

measure raft "raft apply 3 nodes in one process 256 B c=$concurrency" "$kmsbench" raft-baseline -nodes 3 \
	-concurrency "$concurrency" -size 256
settle

# CreateKey's baseline: raw Raft measured the same way as CreateKey. Three
# Raft nodes, each a process of its own with its Raft traffic over mutual
# TLS and its log in bolt on disk, as Trent's nodes are, each behind a
# gRPC+TLS server whose CreateKey is one raw apply of a 256 B entry; driven
# by the same command as Trent's CreateKey (clients spread over the nodes,
# followers forwarding to the leader). The ratio then measures Trent's own
# work on a write (HSM, state machine, audit, authorization), as the Encrypt
# ratio does against bare gRPC. The in-process figure above (Raft alone,
# called directly on the leader) is printed beside it, without a target.
GOGC=${GOGC:-400} "$kmsbench" raft-server -nodes 3 -size 256 -tls-dir "$tls/baseline-server" >"$work/raft-server.log" 2>&1 &
baseline_pids+=("$!")
if raft_endpoints=$(wait_ready "$!" "$work/raft-server.log" "raft server" 45); then
	measure raft-grpc "raft apply behind gRPC+TLS, 3 processes 256 B c=$concurrency" "$kmsbench" -endpoints "$raft_endpoints" \
		-tls-dir "$tls/client" -op create-key -concurrency "$concurrency"
else
	failed=1
fi
stop_baselines
settle

if [[ $skip_cluster == 1 ]]; then
	say "BENCH_SKIP_CLUSTER=1: not measuring Trent"
else
	cluster_dir=$work/cluster
	say "starting a 3-node region (hsm $hsm)"
	if ! endpoints=$(KMSD=$kmsd KMSCTL=$kmsctl KMSBENCH=$kmsbench scripts/dev-cluster.sh up "$cluster_dir" --hsm "$hsm" --nodes 3); then
		say "the dev cluster did not come up"
		exit 1
	fi
	endpoints=$(paste -sd, <<<"$endpoints")
	measure encrypt "Trent Encrypt 32 B c=$concurrency" "$kmsbench" -endpoints "$endpoints" \
		-tls-dir "$cluster_dir/admin" -op encrypt -size 32 -concurrency "$concurrency"
	measure create-key "Trent CreateKey c=$concurrency" "$kmsbench" -endpoints "$endpoints" \
		-tls-dir "$cluster_dir/admin" -op create-key -concurrency "$concurrency"
	# The same Encrypt with every client on the leader: one kmsd serving,
	# compared with the single bare server. Not a target; a second view of
	# Trent's own work, with one server process on each side.
	leader_endpoint=$("$kmsctl" --tls-dir "$cluster_dir/admin" --endpoint "${endpoints%%,*}" cluster status |
		awk '/"GrpcAddress"/ { gsub(/[",]/, "", $2); addr = $2 } /"Leader": true/ { print addr; exit }')
	if [[ -n $leader_endpoint ]]; then
		measure encrypt-leader "Trent Encrypt 32 B c=$concurrency, leader only" "$kmsbench" -endpoints "$leader_endpoint" \
			-tls-dir "$cluster_dir/admin" -op encrypt -size 32 -concurrency "$concurrency"
	else
		say "no leader in cluster status: not measuring Encrypt on the leader alone"
	fi
	scripts/dev-cluster.sh down "$cluster_dir" >/dev/null || true
	settle

	# Another audit sync setting (BENCH_AUDIT_SYNC_INTERVAL), on a fresh
	# cluster: by default 0, which syncs each record before its answer so
	# that records survive a power loss too. Not kmsd's default, so not
	# scored.
	cluster_dir=$work/cluster-audit-interval
	say "starting a 3-node region with -audit-sync-interval $audit_interval"
	if endpoints=$(KMSD_FLAGS="${KMSD_FLAGS:-} -audit-sync-interval $audit_interval" KMSD=$kmsd KMSCTL=$kmsctl \
		KMSBENCH=$kmsbench scripts/dev-cluster.sh up "$cluster_dir" --hsm "$hsm" --nodes 3); then
		endpoints=$(paste -sd, <<<"$endpoints")
		measure encrypt-audit-interval "Trent Encrypt 32 B c=$concurrency, -audit-sync-interval $audit_interval" "$kmsbench" \
			-endpoints "$endpoints" -tls-dir "$cluster_dir/admin" -op encrypt -size 32 -concurrency "$concurrency"
	else
		say "the cluster with -audit-sync-interval did not come up"
		failed=1
	fi
fi

echo
ratio "Encrypt rate / bare gRPC+TLS over 3 processes" encrypt rate bare3-c64 rate ">=" 0.60
ratio "Encrypt p99 / bare over 3 processes p99" encrypt p99_ms bare3-c64 p99_ms "<=" 2.0
ratio "CreateKey rate / raft apply behind gRPC+TLS" create-key rate raft-grpc rate ">=" 0.50
info_ratio "CreateKey rate / in-process raft apply rate" create-key rate raft rate
info_ratio "raft apply behind gRPC+TLS / in-process" raft-grpc rate raft rate
info_ratio "Encrypt rate / bare gRPC+TLS, 1 process" encrypt rate bare-c64 rate
info_ratio "Encrypt p99 / bare, 1 process p99" encrypt p99_ms bare-c64 p99_ms
info_ratio "bare over 3 processes / bare, 1 process" bare3-c64 rate bare-c64 rate
info_ratio "Encrypt, leader only / bare, 1 process" encrypt-leader rate bare-c64 rate
info_ratio "Encrypt p99, leader only / bare, 1 process p99" encrypt-leader p99_ms bare-c64 p99_ms
info_ratio "Encrypt, -audit-sync-interval $audit_interval / bare over 3 processes" encrypt-audit-interval rate bare3-c64 rate

# Replication between two in-process regions of 3 nodes (node package
# benchmarks): 50 ms added each way, 100 key changes/s at the primary. The
# lag is from a change's acknowledgement at the primary to its application
# in the other region; catch-up is the time after a partition heals until
# the other region holds every change made during it.
declare -a repl_rows=()
# bench_metric FILE UNIT prints the value reported with UNIT.
bench_metric() {
	awk -v u="$2" '/^Benchmark/ { for (i = 2; i < NF; i++) if ($(i + 1) == u) print $i }' "$1" | tail -n1
}
target_row() {
	local title=$1 value=$2 target=$3 verdict
	verdict=$(awk -v v="$value" -v t="$target" 'BEGIN { if (v == "") print "failed"; else if (t == "-") print "info"; else print (v <= t) ? "PASS" : "MISS" }')
	printf '%-44s %6s  (target <= %s)  %s\n' "$title" "${value:-n/a}" "$target" "$verdict"
	repl_rows+=("| $title | ${value:-failed} | <= $target | $verdict |")
}
if [[ ${BENCH_SKIP_REPLICATION:-0} != 1 ]]; then
	say "measuring replication lag (1000 changes at 100/s)"
	if ! go test ./node/ -run '^$' -bench '^BenchmarkReplicationLag$' -benchtime 1000x -timeout 10m >"$work/repl-lag.txt" 2>&1; then
		say "replication lag: failed"
		failed=1
	fi
	say "measuring replication catch-up after a ${BENCH_PARTITION:-30s} partition"
	if ! TRENT_BENCH_PARTITION=${BENCH_PARTITION:-30s} go test ./node/ -run '^$' -bench '^BenchmarkReplicationCatchUp$' \
		-benchtime 1x -timeout 15m >"$work/repl-catchup.txt" 2>&1; then
		say "replication catch-up: failed"
		failed=1
	fi
	echo
	target_row "replication lag p50 (ms)" "$(bench_metric "$work/repl-lag.txt" p50-lag-ms)" -
	target_row "replication lag p99 (ms)" "$(bench_metric "$work/repl-lag.txt" p99-lag-ms)" 150
	target_row "catch-up after ${BENCH_PARTITION:-30s} partition (s)" "$(bench_metric "$work/repl-catchup.txt" catch-up-s)" 5
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
commit=$(git rev-parse --short HEAD 2>/dev/null || true)
cat <<EOF

### $(date -u +%Y-%m-%d) — $(nproc) cores${cpu:+, $cpu}, $(go env GOVERSION)${commit:+, commit $commit}

Each benchmark ran ${duration} after ${warmup} of warmup; client and servers share the machine.
Rates count successful requests; latencies are per request.

| benchmark | concurrency | ops/s | p50 ms | p99 ms | errors |
|---|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")

| ratio | value | target | result |
|---|---:|---|---|
$(printf '%s\n' "${ratio_rows[@]}")

| replication (two regions, 50 ms each way, 100 changes/s) | value | target | result |
|---|---:|---|---|
$(printf '%s\n' "${repl_rows[@]}")
EOF
exit "$failed"
