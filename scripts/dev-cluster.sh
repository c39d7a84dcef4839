#!/usr/bin/env bash
# Runs a local Trent region of kmsd nodes on 127.0.0.1 for development and
# benchmarks.
#
#   scripts/dev-cluster.sh up DIR [--hsm soft|softhsm] [--nodes 3]
#   scripts/dev-cluster.sh down DIR
#
# up prints one gRPC endpoint per line on stdout (also kept in DIR/endpoints)
# and exits once every node serves and the region reports all of them;
# progress goes to stderr. Node N keeps its data in DIR/nodeN/data, logs to
# DIR/nodeN.log and its pid in DIR/nodeN.pid.
#
# Every connection is mutual TLS: the first `up` creates the region's CA in
# DIR/ca, node N's certificate (node id nodeN, region local) in
# DIR/nodeN/tls, and an admin client certificate (principal and role admin)
# in DIR/admin, for `kmsctl --tls-dir DIR/admin`.
#
# Every port is picked by the kernel on first start and remembered in
# DIR/nodeN/addrs: Raft membership records addresses, so a node restarted by a
# later `up` on the same DIR must come back where it was.
#
# The nodes gossip (keyring in DIR/gossip-key): node1 bootstraps the region,
# and every other node is given only node1's LAN gossip address
# (-retry-join), through which it finds the region and joins it with the join
# secret. The first 5 nodes are voters, later ones nonvoters (kmsd -voters).
#
# KMSD=PATH, KMSCTL=PATH or KMSBENCH=PATH use prebuilt binaries instead of
# building them into DIR/bin; KMSD_FLAGS adds flags to every node (e.g.
# "-log-level debug").
set -euo pipefail
# Node data holds key material, and the logs may say more than they should.
umask 077

readonly ready_timeout=30
readonly stop_timeout=10
readonly softhsm_lib=/usr/lib/softhsm/libsofthsm2.so

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { echo "dev-cluster: $*" >&2; }
die() {
	say "$*"
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $0 up DIR [--hsm soft|softhsm] [--nodes N]
       $0 down DIR
EOF
	exit 2
}

# Prints the pid recorded for node $2 in $1 if that process is still a kmsd
# of this DIR; a recycled pid belongs to someone else and must not be killed.
live_pid() {
	local pid_file="$1/node$2.pid" pid
	[[ -f $pid_file ]] || return 1
	pid=$(<"$pid_file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	ps -p "$pid" -o args= 2>/dev/null | grep -qF -- "$1/node$2/data" || return 1
	echo "$pid"
}

node_numbers() {
	local f n
	for f in "$1"/node*.pid; do
		[[ -e $f ]] || continue
		n=${f##*/node}
		echo "${n%.pid}"
	done
}

stop_nodes() {
	local dir=$1 n pid pids=()
	for n in $(node_numbers "$dir"); do
		if pid=$(live_pid "$dir" "$n"); then
			say "stopping node$n (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	local deadline=$((SECONDS + stop_timeout))
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "pid $pid still running after ${stop_timeout}s, killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	rm -f "$dir"/node*.pid "$dir/endpoints"
}

show_log_tail() {
	if [[ -s $1 ]]; then
		say "last lines of $1:"
		tail -n 20 "$1" >&2
	else
		say "$1 is empty"
	fi
}

# Prints field $3 (grpc, raft, ...) of the first "ready" line in log $1,
# waiting for it up to the deadline; fails early if process $2 exits.
await_ready() {
	local log=$1 pid=$2 field=$3 deadline=$((SECONDS + ready_timeout)) line
	while :; do
		line=$(grep -m1 '^ready ' "$log" 2>/dev/null || true)
		if [[ -n $line ]]; then
			tr ' ' '\n' <<<"$line" | sed -n "s/^$field=//p"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			say "$(basename "$log" .log) exited before it was ready"
			show_log_tail "$log"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			say "$(basename "$log" .log) not ready after ${ready_timeout}s"
			show_log_tail "$log"
			return 1
		fi
		sleep 0.1
	done
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

write_secret() { random_hex "$2" >"$1"; }

# Sets up node $2's SoftHSM2 token, once.
prepare_softhsm() {
	local dir=$1 n=$2 node_dir="$1/node$2"
	local conf="$node_dir/softhsm2.conf" label="trent-node$2"
	mkdir -p "$node_dir/tokens"
	if [[ ! -f $conf ]]; then
		printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$node_dir/tokens" >"$conf"
	fi
	# SoftHSM puts a token in a slot with a random number: look it up by label.
	if SOFTHSM2_CONF=$conf softhsm2-util --show-slots 2>/dev/null | grep -Eq "Label: +$label *$"; then
		return 0
	fi
	write_secret "$node_dir/pin" 16
	write_secret "$node_dir/so-pin" 16
	SOFTHSM2_CONF=$conf softhsm2-util --init-token --free --label "$label" \
		--so-pin "$(<"$node_dir/so-pin")" --pin "$(<"$node_dir/pin")" >&2
}

# Creates, once each, the region's CA, the admin client certificate and the
# certificates of nodes 1..$2. Node certificates name 127.0.0.1, where the
# nodes listen; certificates are never printed, only their paths.
prepare_tls() {
	local dir=$1 nodes=$2 n
	if [[ ! -f $dir/ca/ca.crt ]]; then
		"$kmsctl" ca init "$dir/ca" --name "Trent dev-cluster CA" >/dev/null
	fi
	if [[ ! -f $dir/admin/client.crt ]]; then
		"$kmsctl" ca issue-client --ca "$dir/ca" --principal admin --role admin --out "$dir/admin" >/dev/null
	fi
	for ((n = 1; n <= nodes; n++)); do
		if [[ ! -f $dir/node$n/tls/node.crt ]]; then
			"$kmsctl" ca issue-node --ca "$dir/ca" --region local --node-id "node$n" \
				--host 127.0.0.1 --host localhost --out "$dir/node$n/tls" >/dev/null
		fi
	done
}

# Starts node $2 in the background with any extra kmsd flags after $3.
start_node() {
	local dir=$1 n=$2 hsm=$3
	shift 3
	local node_dir="$dir/node$n" grpc_addr=127.0.0.1:0 raft_addr=127.0.0.1:0
	local gossip_lan=127.0.0.1:0 gossip_wan=127.0.0.1:0
	local -a hsm_flags=(-hsm soft) env_prefix=()
	mkdir -p "$node_dir/data"
	if [[ -f $node_dir/addrs ]]; then
		grpc_addr=$(sed -n 's/^grpc=//p' "$node_dir/addrs")
		raft_addr=$(sed -n 's/^raft=//p' "$node_dir/addrs")
		# Addresses files from before gossip have no gossip lines.
		gossip_lan=$(sed -n 's/^gossip_lan=//p' "$node_dir/addrs")
		gossip_wan=$(sed -n 's/^gossip_wan=//p' "$node_dir/addrs")
		gossip_lan=${gossip_lan:-127.0.0.1:0}
		gossip_wan=${gossip_wan:-127.0.0.1:0}
	fi
	if [[ $hsm == softhsm ]]; then
		prepare_softhsm "$dir" "$n"
		hsm_flags=(-hsm pkcs11 -pkcs11-lib "$softhsm_lib" -pkcs11-token-label "trent-node$n"
			-pkcs11-pin-file "$node_dir/pin")
		env_prefix=(env "SOFTHSM2_CONF=$node_dir/softhsm2.conf")
	fi
	if [[ -f $dir/node$n.log ]]; then
		mv "$dir/node$n.log" "$dir/node$n.log.prev"
	fi
	# stdin and stdout must not be ours: a caller reading our stdout through
	# a pipe would otherwise wait for the nodes to exit.
	local -a extra_flags=()
	read -r -a extra_flags <<<"${KMSD_FLAGS:-}"
	nohup "${env_prefix[@]}" "$kmsd" \
		-data-dir "$node_dir/data" \
		-node-id "node$n" \
		-region local \
		-tls-cert "$node_dir/tls/node.crt" \
		-tls-key "$node_dir/tls/node.key" \
		-tls-ca "$node_dir/tls/ca.crt" \
		-grpc-addr "$grpc_addr" \
		-raft-addr "$raft_addr" \
		-join-secret-file "$dir/join-secret" \
		-gossip-lan "$gossip_lan" \
		-gossip-wan "$gossip_wan" \
		-gossip-key-file "$dir/gossip-key" \
		"${hsm_flags[@]}" "$@" "${extra_flags[@]}" \
		</dev/null >"$dir/node$n.log" 2>&1 &
	echo $! >"$dir/node$n.pid"
}

# Waits for node $2's ready line, remembers its addresses and prints its
# gRPC endpoint.
await_node() {
	local dir=$1 n=$2 pid grpc raft gossip_lan gossip_wan
	pid=$(<"$dir/node$n.pid")
	grpc=$(await_ready "$dir/node$n.log" "$pid" grpc) || return 1
	raft=$(await_ready "$dir/node$n.log" "$pid" raft) || return 1
	gossip_lan=$(await_ready "$dir/node$n.log" "$pid" gossip_lan) || return 1
	gossip_wan=$(await_ready "$dir/node$n.log" "$pid" gossip_wan) || return 1
	[[ -n $grpc && -n $raft && -n $gossip_lan && -n $gossip_wan ]] || {
		say "node$n: ready line lacks grpc=, raft=, gossip_lan= or gossip_wan=: $(grep -m1 '^ready ' "$dir/node$n.log")"
		return 1
	}
	printf 'grpc=%s\nraft=%s\ngossip_lan=%s\ngossip_wan=%s\n' "$grpc" "$raft" "$gossip_lan" "$gossip_wan" >"$dir/node$n/addrs"
	say "node$n ready: grpc $grpc raft $raft gossip $gossip_lan"
	echo "$grpc"
}

# Prints node $2's remembered LAN gossip address.
gossip_lan_of() { sed -n 's/^gossip_lan=//p' "$1/node$2/addrs"; }

# Set by cmd_up; the EXIT trap needs them after cmd_up's locals are gone.
cluster_dir=
kmsd=
kmsctl=
kmsbench=

cmd_up() {
	local dir=$1 hsm=soft nodes=3
	shift
	while (($#)); do
		case $1 in
		--hsm)
			hsm=${2:-}
			shift 2 || usage
			;;
		--nodes)
			nodes=${2:-}
			shift 2 || usage
			;;
		*) usage ;;
		esac
	done
	[[ $hsm == soft || $hsm == softhsm ]] || die "--hsm must be soft or softhsm, not '$hsm'"
	[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive number, not '$nodes'"
	if [[ $hsm == softhsm ]] && ! command -v softhsm2-util >/dev/null; then
		die "--hsm softhsm needs SoftHSM2: apt-get install -y softhsm2"
	fi
	if [[ $hsm == softhsm && ! -f $softhsm_lib ]]; then
		die "--hsm softhsm needs $softhsm_lib: apt-get install -y softhsm2"
	fi

	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local n
	for n in $(node_numbers "$dir"); do
		if live_pid "$dir" "$n" >/dev/null; then
			die "a cluster is already running in $dir (node$n); '$0 down $dir' first"
		fi
	done
	if [[ -f $dir/hsm && $(<"$dir/hsm") != "$hsm" ]]; then
		die "$dir was set up with --hsm $(<"$dir/hsm"); its nodes' keys live there"
	fi
	echo "$hsm" >"$dir/hsm"
	cluster_dir=$dir

	cd "$repo_root"
	kmsd=${KMSD:-}
	kmsctl=${KMSCTL:-}
	kmsbench=${KMSBENCH:-}
	if [[ -z $kmsd ]]; then
		say "building kmsd"
		go build -o "$dir/bin/kmsd" ./cmd/kmsd
		kmsd=$dir/bin/kmsd
	fi
	if [[ -z $kmsctl ]]; then
		say "building kmsctl"
		go build -o "$dir/bin/kmsctl" ./cmd/kmsctl
		kmsctl=$dir/bin/kmsctl
	fi
	if [[ -z $kmsbench ]]; then
		say "building kmsbench"
		go build -o "$dir/bin/kmsbench" ./cmd/kmsbench
		kmsbench=$dir/bin/kmsbench
	fi
	[[ -f $dir/join-secret ]] || write_secret "$dir/join-secret" 32
	[[ -f $dir/gossip-key ]] || head -c 32 /dev/urandom | base64 >"$dir/gossip-key"
	prepare_tls "$dir" "$nodes"

	# Whatever fails from here, or interrupts, leaves no node running.
	trap 'stop_nodes "$cluster_dir"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	local -a endpoints=()
	local endpoint
	local seed
	if [[ -f $dir/node1/addrs ]]; then
		# Restart: a lone node of an existing region may wait for a quorum
		# before it serves, so all start together. State on disk makes kmsd
		# ignore -bootstrap, and -retry-join only brings the node back into
		# the gossip pool. A DIR from before gossip has no node1 gossip
		# address yet: the nodes then rejoin through Raft alone.
		say "restarting the $nodes-node region in $dir"
		start_node "$dir" 1 "$hsm" -bootstrap
		seed=$(gossip_lan_of "$dir" 1)
		for ((n = 2; n <= nodes; n++)); do
			if [[ -n $seed ]]; then
				start_node "$dir" "$n" "$hsm" -retry-join "$seed"
			else
				start_node "$dir" "$n" "$hsm"
			fi
		done
		for ((n = 1; n <= nodes; n++)); do
			endpoint=$(await_node "$dir" "$n")
			endpoints+=("$endpoint")
		done
	else
		say "starting a $nodes-node region in $dir (hsm $hsm)"
		start_node "$dir" 1 "$hsm" -bootstrap
		endpoint=$(await_node "$dir" 1)
		endpoints+=("$endpoint")
		seed=$(gossip_lan_of "$dir" 1)
		for ((n = 2; n <= nodes; n++)); do
			start_node "$dir" "$n" "$hsm" -retry-join "$seed"
			endpoint=$(await_node "$dir" "$n")
			endpoints+=("$endpoint")
		done
	fi

	local joined
	joined=$(
		IFS=,
		echo "${endpoints[*]}"
	)
	say "waiting for every node to see all $nodes members"
	"$kmsbench" wait-cluster -endpoints "$joined" -nodes "$nodes" -timeout "${ready_timeout}s" -tls-dir "$dir/admin"

	printf '%s\n' "${endpoints[@]}" >"$dir/endpoints"
	trap - EXIT
	say "try: kmsctl --tls-dir $dir/admin --endpoint ${endpoints[0]} cluster status"
	printf '%s\n' "${endpoints[@]}"
}

cmd_down() {
	local dir=$1
	[[ -d $dir ]] || die "no such directory: $dir"
	dir=$(cd "$dir" && pwd)
	stop_nodes "$dir"
}

(($# >= 2)) || usage
case $1 in
up) cmd_up "${@:2}" ;;
down)
	(($# == 2)) || usage
	cmd_down "$2"
	;;
*) usage ;;
esac
