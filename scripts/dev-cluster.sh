#!/usr/bin/env bash
# Runs local Trent regions of kmsd nodes on 127.0.0.1 for development and
# benchmarks: one region, or several linked by the WAN gossip pool.
#
#   scripts/dev-cluster.sh up DIR [--regions R1,R2,...] [--hsm soft|softhsm] [--nodes 3]
#   scripts/dev-cluster.sh down DIR
#
# Without --regions, up runs one region, "local": it prints one gRPC endpoint
# per line on stdout (also kept in DIR/endpoints) and exits once every node
# serves and the region reports all of them; progress goes to stderr. Node N
# keeps its data in DIR/nodeN/data, logs to DIR/nodeN.log and its pid in
# DIR/nodeN.pid.
#
# With --regions, up runs --nodes nodes in each region named, with the same
# files one level down: DIR/REGION/nodeN/data, DIR/REGION/nodeN.log,
# DIR/REGION/nodeN.pid. It prints one line per node, "REGION HOST:PORT",
# regions in the order given (also kept in DIR/endpoints; DIR/REGION/endpoints
# lists the region's bare endpoints), and exits once, in addition, cluster
# status on the first region's node1 shows every node of every region alive
# in the WAN gossip pool and a leader for every region. down stops every node
# of every region. The regions of a DIR are fixed by its first up.
#
# Every connection is mutual TLS: the first `up` creates one CA in DIR/ca,
# trusted by every region, node N's certificate (node id nodeN, its region:
# "local", or REGION) in DIR/nodeN/tls or DIR/REGION/nodeN/tls, and an admin
# client certificate (principal and role admin) in DIR/admin, for
# `kmsctl --tls-dir DIR/admin`.
#
# Every port is picked by the kernel on first start and remembered in
# DIR/nodeN/addrs (DIR/REGION/nodeN/addrs): Raft membership records addresses,
# and other nodes keep gossip seeds, so a node restarted by a later `up` on the
# same DIR must come back where it was.
#
# The nodes gossip with one keyring, DIR/gossip-key, shared by every region
# (the WAN pool needs it). In each region node1 bootstraps the region, and
# every other node is given only node1's LAN gossip address (-retry-join),
# through which it finds the region and joins it with the region's join secret
# (DIR/join-secret, or DIR/REGION/join-secret). Every node of the second and
# later regions is also given the first region's node1 WAN gossip address
# (-wan-join), so the WAN pool spans all regions. The first 5 nodes of a region
# are voters, later ones nonvoters (kmsd -voters).
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
# Names of DIR's own files and of the single-region layout: no region may
# take them.
readonly reserved_names=" admin bin ca endpoints gossip-key hsm join-secret regions "

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { echo "dev-cluster: $*" >&2; }
die() {
	say "$*"
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $0 up DIR [--regions R1,R2,...] [--hsm soft|softhsm] [--nodes N]
       $0 down DIR
EOF
	exit 2
}

# Set by cmd_up and cmd_down; the EXIT trap needs them after their locals are
# gone. region_dirs holds DIR itself without --regions, else DIR/REGION for
# each region.
cluster_dir=
region_dirs=()
kmsd=
kmsctl=
kmsbench=

# Prints how messages name node $2 of region directory $1: nodeN, or
# REGION/nodeN with --regions.
node_name() {
	if [[ $1 == "$cluster_dir" ]]; then
		echo "node$2"
	else
		echo "${1##*/}/node$2"
	fi
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

# Stops the nodes of every directory given, all at once, and forgets their
# endpoints.
stop_nodes() {
	local dir n pid pids=()
	for dir in "$@"; do
		for n in $(node_numbers "$dir"); do
			if pid=$(live_pid "$dir" "$n"); then
				say "stopping $(node_name "$dir" "$n") (pid $pid)"
				kill -TERM "$pid" 2>/dev/null || true
				pids+=("$pid")
			fi
		done
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
	for dir in "$@"; do
		rm -f "$dir"/node*.pid "$dir/endpoints"
	done
}

# Stops every node of the regions of cluster_dir and forgets their endpoints
# (and, with --regions, DIR/endpoints).
stop_all() {
	if [[ ${region_dirs[0]:-} == "$cluster_dir" ]]; then
		stop_nodes "${region_dirs[@]}"
	else
		stop_nodes "$cluster_dir" "${region_dirs[@]}"
	fi
}

show_log_tail() {
	if [[ -s $1 ]]; then
		say "last lines of $1:"
		tail -n 20 "$1" >&2
	else
		say "$1 is empty"
	fi
}

# Prints the first "ready" line in log $2 of node $1, waiting for it up to the
# deadline; fails early if process $3 exits.
await_ready() {
	local name=$1 log=$2 pid=$3 deadline=$((SECONDS + ready_timeout)) line
	while :; do
		line=$(grep -m1 '^ready ' "$log" 2>/dev/null || true)
		if [[ -n $line ]]; then
			echo "$line"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			say "$name exited before it was ready"
			show_log_tail "$log"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			say "$name not ready after ${ready_timeout}s"
			show_log_tail "$log"
			return 1
		fi
		sleep 0.1
	done
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

write_secret() { random_hex "$2" >"$1"; }

# Sets up the SoftHSM2 token of node $2 of region directory $1, once.
prepare_softhsm() {
	local node_dir="$1/node$2"
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

# Creates, once each, the CA every region trusts and the admin client
# certificate.
prepare_ca() {
	local dir=$1
	if [[ ! -f $dir/ca/ca.crt ]]; then
		"$kmsctl" ca init "$dir/ca" --name "Trent dev-cluster CA" >/dev/null
	fi
	if [[ ! -f $dir/admin/client.crt ]]; then
		"$kmsctl" ca issue-client --ca "$dir/ca" --principal admin --role admin --out "$dir/admin" >/dev/null
	fi
}

# Creates, once each, the certificates of nodes 1..$3 of region $2, whose
# directory is $1. Node certificates name their region and 127.0.0.1, where
# the nodes listen; certificates are never printed, only their paths.
prepare_node_certs() {
	local rdir=$1 region=$2 nodes=$3 n
	for ((n = 1; n <= nodes; n++)); do
		if [[ ! -f $rdir/node$n/tls/node.crt ]]; then
			"$kmsctl" ca issue-node --ca "$cluster_dir/ca" --region "$region" --node-id "node$n" \
				--host 127.0.0.1 --host localhost --out "$rdir/node$n/tls" >/dev/null
		fi
	done
}

# Starts node $2 of region $4 (directory $1) in the background with any extra
# kmsd flags after $4.
start_node() {
	local dir=$1 n=$2 hsm=$3 region=$4
	shift 4
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
		-region "$region" \
		-tls-cert "$node_dir/tls/node.crt" \
		-tls-key "$node_dir/tls/node.key" \
		-tls-ca "$node_dir/tls/ca.crt" \
		-grpc-addr "$grpc_addr" \
		-raft-addr "$raft_addr" \
		-join-secret-file "$dir/join-secret" \
		-gossip-lan "$gossip_lan" \
		-gossip-wan "$gossip_wan" \
		-gossip-key-file "$cluster_dir/gossip-key" \
		"${hsm_flags[@]}" "$@" "${extra_flags[@]}" \
		</dev/null >"$dir/node$n.log" 2>&1 &
	echo $! >"$dir/node$n.pid"
}

# Waits for the ready line of node $2 of region directory $1 and remembers its
# addresses.
await_node() {
	local dir=$1 n=$2 name pid line word grpc='' raft='' gossip_lan='' gossip_wan=''
	local -a words
	name=$(node_name "$dir" "$n")
	pid=$(<"$dir/node$n.pid")
	line=$(await_ready "$name" "$dir/node$n.log" "$pid") || return 1
	read -r -a words <<<"$line"
	for word in "${words[@]}"; do
		case $word in
		grpc=*) grpc=${word#*=} ;;
		raft=*) raft=${word#*=} ;;
		gossip_lan=*) gossip_lan=${word#*=} ;;
		gossip_wan=*) gossip_wan=${word#*=} ;;
		esac
	done
	[[ -n $grpc && -n $raft && -n $gossip_lan && -n $gossip_wan ]] || {
		say "$name: ready line lacks grpc=, raft=, gossip_lan= or gossip_wan=: $line"
		return 1
	}
	printf 'grpc=%s\nraft=%s\ngossip_lan=%s\ngossip_wan=%s\n' "$grpc" "$raft" "$gossip_lan" "$gossip_wan" >"$dir/node$n/addrs"
	say "$name ready: grpc $grpc raft $raft gossip $gossip_lan"
}

# Prints field $3 (grpc, gossip_lan, gossip_wan) of the addresses remembered
# for node $2 of region directory $1.
addr_of() { sed -n "s/^$3=//p" "$1/node$2/addrs"; }

# Prints the gRPC endpoints of nodes 1..$2 of region directory $1, one a line.
endpoints_of() {
	local n
	for ((n = 1; n <= $2; n++)); do
		addr_of "$1" "$n" grpc
	done
}

# Prints, from `kmsctl cluster status` JSON on stdin, "member REGION STATUS"
# for each WAN pool member and "leader REGION" for each region leader.
gossip_view() {
	awk '
	/"(LanMembers|WanMembers|RegionLeaders)": \[$/ { list = $1; gsub(/[":]/, "", list); next }
	/^ *\],?$/ { list = ""; next }
	list == "" { next }
	{ value = $0; sub(/^[^:]*: "?/, "", value); sub(/"?,?$/, "", value) }
	/"Region": / { region = value }
	/"Status": / { status = value }
	/^ *},?$/ {
		if (list == "WanMembers") print "member", region, status
		if (list == "RegionLeaders") print "leader", region
		region = status = ""
	}'
}

# Waits until cluster status on endpoint $1 shows, for every region after
# $2, $2 alive members in the WAN pool and a leader.
await_wan() {
	local endpoint=$1 nodes=$2 region view alive missing
	shift 2
	local deadline=$((SECONDS + ready_timeout))
	while :; do
		view=$("$kmsctl" --tls-dir "$cluster_dir/admin" --endpoint "$endpoint" cluster status 2>/dev/null | gossip_view) || true
		missing=
		for region in "$@"; do
			alive=$(grep -c "^member $region alive$" <<<"$view" || true)
			if ((alive < nodes)); then
				missing+=" $region: $alive of $nodes alive"
			elif ! grep -qx "leader $region" <<<"$view"; then
				missing+=" $region: no leader"
			fi
		done
		[[ -z $missing ]] && return 0
		if ((SECONDS >= deadline)); then
			say "the WAN pool as $endpoint sees it is not complete after ${ready_timeout}s:$missing"
			return 1
		fi
		sleep 0.2
	done
}

# Checks a --regions list and prints its names, one a line.
parse_regions() {
	local list=$1 region seen=" "
	[[ -n $list ]] || die "--regions needs at least one region name"
	local -a names
	IFS=, read -r -a names <<<"$list"
	[[ $list != *, ]] || die "--regions: empty region name in '$list'"
	for region in "${names[@]}"; do
		[[ $region =~ ^[a-z0-9-]{1,64}$ ]] ||
			die "--regions: '$region' is not a region name (lower-case letters, digits and -, at most 64)"
		if [[ $reserved_names == *" $region "* || $region =~ ^node[0-9]+$ ]]; then
			die "--regions: '$region' names one of DIR's own files; choose another region name"
		fi
		[[ $seen != *" $region "* ]] || die "--regions: '$region' given twice"
		seen+="$region "
		echo "$region"
	done
}

cmd_up() {
	local dir=$1 hsm=soft nodes=3 regions_list=
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
		--regions)
			regions_list=${2:-}
			shift 2 || usage
			[[ -n $regions_list ]] || die "--regions needs at least one region name"
			;;
		*) usage ;;
		esac
	done
	[[ $hsm == soft || $hsm == softhsm ]] || die "--hsm must be soft or softhsm, not '$hsm'"
	[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive number, not '$nodes'"
	local -a regions=(local)
	if [[ -n $regions_list ]]; then
		local names
		names=$(parse_regions "$regions_list") || exit 1
		mapfile -t regions <<<"$names"
		regions_list=$(
			IFS=,
			echo "${regions[*]}"
		)
	fi
	if [[ $hsm == softhsm ]] && ! command -v softhsm2-util >/dev/null; then
		die "--hsm softhsm needs SoftHSM2: apt-get install -y softhsm2"
	fi
	if [[ $hsm == softhsm && ! -f $softhsm_lib ]]; then
		die "--hsm softhsm needs $softhsm_lib: apt-get install -y softhsm2"
	fi

	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	cluster_dir=$dir
	# A DIR keeps the layout of its first up: its nodes' state is there.
	if [[ -f $dir/regions ]]; then
		[[ $(<"$dir/regions") == "$regions_list" ]] ||
			die "$dir holds the regions $(<"$dir/regions"); give --regions $(<"$dir/regions")"
	elif [[ -n $regions_list && -f $dir/join-secret ]]; then
		die "$dir holds a region started without --regions; use another DIR"
	fi
	local region rdir n
	region_dirs=()
	for region in "${regions[@]}"; do
		if [[ -n $regions_list ]]; then
			region_dirs+=("$dir/$region")
		else
			region_dirs+=("$dir")
		fi
	done
	for rdir in "${region_dirs[@]}"; do
		for n in $(node_numbers "$rdir"); do
			if live_pid "$rdir" "$n" >/dev/null; then
				die "a cluster is already running in $dir ($(node_name "$rdir" "$n")); '$0 down $dir' first"
			fi
		done
	done
	if [[ -f $dir/hsm && $(<"$dir/hsm") != "$hsm" ]]; then
		die "$dir was set up with --hsm $(<"$dir/hsm"); its nodes' keys live there"
	fi
	echo "$hsm" >"$dir/hsm"
	if [[ -n $regions_list ]]; then
		echo "$regions_list" >"$dir/regions"
	fi

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
	[[ -f $dir/gossip-key ]] || head -c 32 /dev/urandom | base64 >"$dir/gossip-key"
	prepare_ca "$dir"
	local i
	for i in "${!regions[@]}"; do
		rdir=${region_dirs[i]}
		mkdir -p "$rdir"
		[[ -f $rdir/join-secret ]] || write_secret "$rdir/join-secret" 32
		prepare_node_certs "$rdir" "${regions[i]}" "$nodes"
	done

	# Whatever fails from here, or interrupts, leaves no node running.
	trap stop_all EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	# A region whose node1 has run before restarts: a lone node of an
	# existing region may wait for a quorum before it serves, so all its
	# nodes start together. State on disk makes kmsd ignore -bootstrap, and
	# -retry-join and -wan-join only bring the node back into the gossip
	# pools. A DIR from before gossip has no node1 gossip address yet: its
	# nodes then rejoin through Raft alone. A new region starts node1 first,
	# which bootstraps it; the other nodes then join it one by one, in node
	# order, so the first ones become the voters.
	local -a restarted=() wan_flags=()
	local seed wan_seed=
	for i in "${!regions[@]}"; do
		region=${regions[i]}
		rdir=${region_dirs[i]}
		if [[ -f $rdir/node1/addrs ]]; then
			restarted[i]=1
			if [[ -n $regions_list ]]; then
				say "restarting the $nodes-node region $region in $rdir"
			else
				say "restarting the $nodes-node region in $dir"
			fi
			start_node "$rdir" 1 "$hsm" "$region" -bootstrap "${wan_flags[@]}"
			seed=$(addr_of "$rdir" 1 gossip_lan)
			for ((n = 2; n <= nodes; n++)); do
				if [[ -n $seed ]]; then
					start_node "$rdir" "$n" "$hsm" "$region" -retry-join "$seed" "${wan_flags[@]}"
				else
					start_node "$rdir" "$n" "$hsm" "$region" "${wan_flags[@]}"
				fi
			done
		else
			restarted[i]=
			if [[ -n $regions_list ]]; then
				say "starting the $nodes-node region $region in $rdir (hsm $hsm)"
			else
				say "starting a $nodes-node region in $dir (hsm $hsm)"
			fi
			start_node "$rdir" 1 "$hsm" "$region" -bootstrap "${wan_flags[@]}"
		fi
		if ((i == 0)); then
			# Later regions reach the WAN pool through the first one's node1.
			[[ -n ${restarted[0]} ]] || await_node "$rdir" 1
			wan_seed=$(addr_of "$rdir" 1 gossip_wan)
			if [[ -n $wan_seed ]]; then
				wan_flags=(-wan-join "$wan_seed")
			fi
		fi
	done
	# New regions: node1 of each serves, then node N of each joins its
	# region, the regions side by side.
	for i in "${!regions[@]}"; do
		if ((i > 0)) && [[ -z ${restarted[i]} ]]; then
			await_node "${region_dirs[i]}" 1
		fi
	done
	for ((n = 2; n <= nodes; n++)); do
		for i in "${!regions[@]}"; do
			[[ -z ${restarted[i]} ]] || continue
			rdir=${region_dirs[i]}
			local -a node_wan_flags=()
			((i == 0)) || node_wan_flags=("${wan_flags[@]}")
			start_node "$rdir" "$n" "$hsm" "${regions[i]}" -retry-join "$(addr_of "$rdir" 1 gossip_lan)" "${node_wan_flags[@]}"
		done
		for i in "${!regions[@]}"; do
			[[ -n ${restarted[i]} ]] || await_node "${region_dirs[i]}" "$n"
		done
	done
	for i in "${!regions[@]}"; do
		[[ -n ${restarted[i]} ]] || continue
		for ((n = 1; n <= nodes; n++)); do
			await_node "${region_dirs[i]}" "$n"
		done
	done

	local joined
	for i in "${!regions[@]}"; do
		joined=$(endpoints_of "${region_dirs[i]}" "$nodes" | paste -sd, -)
		if [[ -n $regions_list ]]; then
			say "waiting for every node of ${regions[i]} to see all $nodes members"
		else
			say "waiting for every node to see all $nodes members"
		fi
		"$kmsbench" wait-cluster -endpoints "$joined" -nodes "$nodes" -timeout "${ready_timeout}s" -tls-dir "$dir/admin"
	done
	local first
	first=$(addr_of "${region_dirs[0]}" 1 grpc)
	if ((${#regions[@]} > 1)); then
		say "waiting for ${regions[0]}/node1 to see every region's nodes and leader in the WAN pool"
		await_wan "$first" "$nodes" "${regions[@]}"
	fi

	if [[ -z $regions_list ]]; then
		endpoints_of "$dir" "$nodes" >"$dir/endpoints"
	else
		: >"$dir/endpoints"
		for i in "${!regions[@]}"; do
			rdir=${region_dirs[i]}
			endpoints_of "$rdir" "$nodes" >"$rdir/endpoints"
			sed "s/^/${regions[i]} /" "$rdir/endpoints" >>"$dir/endpoints"
		done
	fi
	trap - EXIT
	say "try: kmsctl --tls-dir $dir/admin --endpoint $first cluster status"
	cat "$dir/endpoints"
}

cmd_down() {
	local dir=$1 region
	[[ -d $dir ]] || die "no such directory: $dir"
	dir=$(cd "$dir" && pwd)
	cluster_dir=$dir
	region_dirs=("$dir")
	if [[ -f $dir/regions ]]; then
		region_dirs=()
		for region in $(tr , ' ' <"$dir/regions"); do
			region_dirs+=("$dir/$region")
		done
	fi
	stop_all
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
