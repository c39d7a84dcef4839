#!/usr/bin/env bash
# Tests scripts/dev-cluster.sh end to end: one region as before, two regions
# with --regions, restarts on the remembered addresses, down, and the command
# lines it refuses. Takes about half a minute; every node it starts is stopped
# on exit.
#
#   scripts/dev-cluster-test.sh
#
# KMSD=PATH, KMSCTL=PATH and KMSBENCH=PATH test prebuilt binaries; otherwise
# they are built once from the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/dev-cluster-test.XXXXXX")
cleanup() {
	local dir
	for dir in "$work"/one "$work"/two; do
		if [[ -d $dir ]]; then
			scripts/dev-cluster.sh down "$dir" 2>/dev/null || true
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT

failures=0
pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

if [[ -z ${KMSD:-} || -z ${KMSCTL:-} || -z ${KMSBENCH:-} ]]; then
	echo "building kmsd, kmsctl and kmsbench"
	for cmd in kmsd kmsctl kmsbench; do
		go build -o "$work/bin/$cmd" "./cmd/$cmd"
	done
	export KMSD=$work/bin/kmsd KMSCTL=$work/bin/kmsctl KMSBENCH=$work/bin/kmsbench
fi

up() { scripts/dev-cluster.sh up "$@" 2>"$work/stderr"; }
down() { scripts/dev-cluster.sh down "$1" 2>"$work/stderr"; }

# refused WHAT ARGS...: up with ARGS fails and says WHAT.
refused() {
	local what=$1
	shift
	if up "$@" >/dev/null; then
		fail "up $* is refused"
	elif ! grep -qF -- "$what" "$work/stderr"; then
		fail "up $* says '$what'; it said: $(cat "$work/stderr")"
	else
		pass "up $* is refused: $what"
	fi
}

# The pids recorded in DIR and its region directories.
pids_of() { cat "$1"/node*.pid "$1"/*/node*.pid 2>/dev/null || true; }

none_alive() {
	local pid
	for pid in "$@"; do
		if kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
	done
}

matches_all() {
	local pattern=$1 file=$2
	[[ -s $file ]] && ! grep -Evq -- "$pattern" "$file"
}

differ() { ! cmp -s "$1" "$2"; }

status_of() {
	"$KMSCTL" --tls-dir "$1/admin" --endpoint "$2" --output text --query "$3" cluster status
}

echo "== command lines refused before anything starts"
refused "--regions needs at least one region name" "$work/bad" --regions ""
refused "'EU' is not a region name" "$work/bad" --regions EU
refused "'eu-1' given twice" "$work/bad" --regions eu-1,eu-1
refused "empty region name" "$work/bad" --regions eu-1,
refused "'ca' names one of DIR's own files" "$work/bad" --regions eu-1,ca
refused "'node2' names one of DIR's own files" "$work/bad" --regions node2
check "nothing started for refused command lines" test -z "$(pids_of "$work/bad")"

echo "== one region, without --regions"
one=$work/one
if up "$one" >"$work/one.out"; then pass "up one region"; else fail "up one region: $(cat "$work/stderr")"; fi
check "one endpoint per line, three" test "$(grep -Ec '^127\.0\.0\.1:[0-9]+$' "$work/one.out")" = 3
check "DIR/endpoints is what up printed" cmp -s "$work/one.out" "$one/endpoints"
check "node files directly in DIR" test -f "$one/node1.pid" -a -f "$one/node3/tls/node.crt" -a -f "$one/join-secret"
check "the region is local" test "$(status_of "$one" "$(head -1 "$one/endpoints")" Region)" = local
refused "holds a region started without --regions" "$one" --regions eu-1
refused "already running" "$one"
pids=$(pids_of "$one")
down "$one" || fail "down one region"
# shellcheck disable=SC2086 # one pid a word
check "down stops every node" none_alive $pids
check "down forgets the endpoints" test ! -e "$one/endpoints"
refused "holds a region started without --regions" "$one" --regions eu-1
if up "$one" >"$work/one.again"; then pass "restart one region"; else fail "restart one region: $(cat "$work/stderr")"; fi
check "a restart keeps the endpoints" cmp -s "$work/one.out" "$work/one.again"
down "$one" || fail "down one region"

echo "== two regions"
two=$work/two
start=$SECONDS
if up "$two" --regions eu-1,us-1 >"$work/two.out"; then
	pass "up two regions ($((SECONDS - start))s)"
else
	fail "up two regions: $(cat "$work/stderr")"
fi
check "one 'REGION ENDPOINT' line per node" matches_all '^(eu-1|us-1) 127\.0\.0\.1:[0-9]+$' "$work/two.out"
check "three nodes in each region, eu-1 first" test "$(cut -d' ' -f1 "$work/two.out" | paste -sd,)" = eu-1,eu-1,eu-1,us-1,us-1,us-1
check "DIR/endpoints is what up printed" cmp -s "$work/two.out" "$two/endpoints"
check "DIR/eu-1/endpoints lists eu-1's bare endpoints" \
	test "$(cat "$two/eu-1/endpoints")" = "$(sed -n 's/^eu-1 //p' "$work/two.out")"
check "DIR/us-1/endpoints lists us-1's bare endpoints" \
	test "$(cat "$two/us-1/endpoints")" = "$(sed -n 's/^us-1 //p' "$work/two.out")"
check "one CA, one keyring, a join secret per region" \
	test -f "$two/ca/ca.crt" -a -f "$two/gossip-key" -a -f "$two/eu-1/join-secret" -a -f "$two/us-1/join-secret" -a ! -e "$two/join-secret"
check "the regions' join secrets differ" differ "$two/eu-1/join-secret" "$two/us-1/join-secret"
us=$(sed -n 's/^us-1 //p' "$work/two.out" | tail -1)
eu=$(sed -n 's/^eu-1 //p' "$work/two.out" | head -1)
check "a us-1 node is in region us-1" test "$(status_of "$two" "$us" Region)" = us-1
check "eu-1 sees a leader for both regions" test "$(status_of "$two" "$eu" 'RegionLeaders[].Region')" = "$(printf 'eu-1\tus-1')"
check "eu-1 sees six alive WAN members" test "$(status_of "$two" "$eu" 'WanMembers[].Status' | tr '\t' '\n' | grep -c '^alive$')" = 6
# One CA and certificates naming their region are what lets the regions'
# leaders replicate a multi-region key to each other.
kms() { "$KMSCTL" --tls-dir "$two/admin" --output text "$@"; }
key=$(kms --endpoint "$eu" create-key --multi-region --query KeyMetadata.KeyId)
kms --endpoint "$eu" replicate-key --key-id "$key" --replica-region us-1 >/dev/null
replicated() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(kms --endpoint "$us" describe-key --key-id "$key" --query KeyMetadata.KeyState 2>/dev/null) == Enabled ]] && return 0
		sleep 0.1
	done
	return 1
}
check "a multi-region key of eu-1 replicates to us-1" replicated
blob=$(kms --endpoint "$eu" encrypt --key-id "$key" --plaintext "$(printf hello | base64)" --query CiphertextBlob)
check "us-1 decrypts what eu-1 encrypted" \
	test "$(kms --endpoint "$us" decrypt --ciphertext-blob "$blob" --query Plaintext | base64 -d)" = hello
refused "already running" "$two" --regions eu-1,us-1
refused "give --regions eu-1,us-1" "$two"
refused "give --regions eu-1,us-1" "$two" --regions us-1,eu-1
pids=$(pids_of "$two")
check "six nodes recorded" test "$(wc -w <<<"$pids")" = 6
down "$two" || fail "down two regions"
# shellcheck disable=SC2086 # one pid a word
check "down stops every node of every region" none_alive $pids
check "down forgets the endpoints" test ! -e "$two/endpoints" -a ! -e "$two/eu-1/endpoints" -a ! -e "$two/us-1/endpoints"
start=$SECONDS
if up "$two" --regions eu-1,us-1 >"$work/two.again"; then
	pass "restart two regions ($((SECONDS - start))s)"
else
	fail "restart two regions: $(cat "$work/stderr")"
fi
check "a restart keeps the endpoints" cmp -s "$work/two.out" "$work/two.again"
down "$two" || fail "down two regions"

if ((failures > 0)); then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
