# End-to-end test library, sourced by tests/e2e/test_*.sh.
#
# Builds a three-namespace topology, unique per run (prefix xt-$$-):
#
#   client ns            relay ns                      peer ns
#   c0 10.71.1.2  <--->  r0 10.71.1.1   r1 10.71.2.1  <--->  p0 10.71.2.2
#      fd00:71:1::2         fd00:71:1::1   fd00:71:2::1         fd00:71:2::2
#
# The relay's kernel does not forward between client and peer (see
# xt_topology), so they can only talk through the TURN server running there.
# Runs the server under test ($XT_SERVER: xturnd or coturn) and coturn's echo
# peer, and cleans everything up on exit.
#
# Usage in a test:  . "$(dirname "$0")/lib.sh"; xt_init "$1"; xt_topology; ...
# Environment: XT_SERVER=xturnd|coturn (default xturnd), XT_KEEP=1 keeps the
# logs (server, peers, uclient) after the run.

set -u

XT_ID=xt-$$
NS_C=$XT_ID-c
NS_R=$XT_ID-r
NS_P=$XT_ID-p

# Addresses (they exist only inside this run's namespaces).
C4=10.71.1.2   R4C=10.71.1.1   R4P=10.71.2.1   P4=10.71.2.2
C6=fd00:71:1::2 R6C=fd00:71:1::1 R6P=fd00:71:2::1 P6=fd00:71:2::2
MAC_C=02:71:01:00:00:02 MAC_RC=02:71:01:00:00:01
MAC_RP=02:71:02:00:00:01 MAC_P=02:71:02:00:00:02

XT_PORT=3478		# TURN listening port
XT_PEER_PORT=3480	# echo peer port
XT_REALM=xturn.test
XT_TIMEOUT=${XT_TIMEOUT:-60}	# bound on any single command
XT_PIN_DIR=/sys/fs/bpf/$XT_ID	# xturnd's pins, removed on exit

XT_PIDS=()		# every background process we started
XT_NETNS=()		# every namespace we created
XT_SERVER_PID=
XT_SERVER_LOG=
XT_FAILED=0		# number of failed checks

xt_log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
# Records a failure and goes on (so one run reports every broken scenario).
fail() { printf 'FAIL: %s\n' "$*"; XT_FAILED=$((XT_FAILED + 1)); }
# Fatal: the test cannot continue.
die() { printf 'FATAL: %s\n' "$*"; exit 1; }
# Skipped (run-all.sh counts it, and fails the run unless skips are allowed).
xt_skip() { printf 'SKIP: %s\n' "$*"; exit 77; }

# xt_ns NS CMD... : runs CMD in namespace NS, bounded by $XT_TIMEOUT.
xt_ns() {
	local ns=$1; shift
	timeout -k 5 "$XT_TIMEOUT" ip netns exec "$ns" "$@"
}

# xt_spawn LOG CMD... : starts CMD in the background, output to LOG; sets
# XT_BG_PID (the pid of timeout(1), which forwards SIGTERM and exits with
# CMD's status). $XT_BG_LIMIT bounds its life (default 600 s: daemons are
# stopped by cleanup; this only matters if cleanup never runs).
# Call it directly, never as "xt_spawn ... &": that would record a subshell.
xt_spawn() {
	local log=$1; shift
	timeout -k 5 "${XT_BG_LIMIT:-600}" "$@" >"$log" 2>&1 &
	XT_BG_PID=$!
	XT_PIDS+=("$XT_BG_PID")
}

# xt_bg LOG NS CMD... : xt_spawn in namespace NS.
xt_bg() {
	local log=$1 ns=$2; shift 2
	xt_spawn "$log" ip netns exec "$ns" "$@"
}

# xt_wait PID: waits for a process started here, forgets it (so cleanup
# never signals a reused pid) and returns its status.
xt_wait() {
	local rc p keep=()
	wait "$1"; rc=$?
	for p in "${XT_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	XT_PIDS=("${keep[@]}")
	return $rc
}

# xt_stop PID: SIGTERM, then SIGKILL (to it and its child: PID is the
# timeout(1) wrapper) if it is still there after 10 s. Returns its status.
xt_stop() {
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		echo "pid $1 ignored SIGTERM; killing it"
		kill -KILL $(pgrep -P "$1") "$1" 2>/dev/null
	fi
	xt_wait "$1"
}

xt_cleanup() {
	local rc=$? pid ns
	trap - EXIT INT TERM
	for pid in "${XT_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${XT_PIDS[@]}"; do
		xt_stop "$pid"
	done
	for ns in "${XT_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	# only our own pin directory, never /sys/fs/bpf itself
	[ -n "$XT_ID" ] && [ -d "$XT_PIN_DIR" ] && rm -rf -- "$XT_PIN_DIR"
	if [ "${XT_KEEP:-0}" = 1 ]; then
		echo "logs kept in ${XT_TMP:-}"
	elif [ -n "${XT_TMP:-}" ] && [ -d "$XT_TMP" ]; then
		rm -rf -- "$XT_TMP"
	fi
	exit "$rc"
}

# xt_init BUILD_DIR: checks tools, picks the server, installs the trap.
xt_init() {
	XT_BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || XT_BUILD=${1:-build}
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
	local t
	for t in ip ethtool nsenter timeout turnutils_uclient turnutils_peer \
		 turnutils_stunclient; do
		command -v "$t" >/dev/null || die "missing tool: $t"
	done
	# xturnd unless asked for coturn: a missing build fails, it does not
	# quietly test coturn instead.
	XT_SERVER=${XT_SERVER:-xturnd}
	case $XT_SERVER in
	xturnd)
		[ -x "$XT_BUILD/xturnd" ] || die "no $XT_BUILD/xturnd"
		for t in bpftool jq; do
			command -v "$t" >/dev/null || die "missing tool: $t"
		done
		;;
	coturn) command -v turnserver >/dev/null || die "missing tool: turnserver" ;;
	*) die "XT_SERVER must be xturnd or coturn, not '$XT_SERVER'" ;;
	esac
	XT_TMP=$(mktemp -d "/tmp/$XT_ID.XXXXXX")
	XT_SOCK=$XT_TMP/xturnd.sock
	XT_CTL=$XT_TMP/control.sock
	trap xt_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	xt_log "server under test: $XT_SERVER (namespaces $XT_ID-{c,r,p})"
}

# The veth pairs are created inside the namespaces, so the host's own
# interfaces are never touched.
xt_topology() {
	local ns r fam from to
	for ns in "$NS_C" "$NS_R" "$NS_P"; do
		ip netns add "$ns" || die "ip netns add $ns"
		XT_NETNS+=("$ns")
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_C" link add c0 address $MAC_C type veth \
		peer name r0 address $MAC_RC netns "$NS_R" || die "veth c0-r0"
	ip -n "$NS_P" link add p0 address $MAC_P type veth \
		peer name r1 address $MAC_RP netns "$NS_R" || die "veth p0-r1"

	# The relay process must be the only path between client and peer:
	# forwarding is off. (xturnd's XDP path does its bpf_fib_lookup through
	# a lookup device of its own with forwarding on, so it needs no
	# forwarding here.) xt_assert_isolated proves it.
	xt_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 ||
		die "relay sysctl"

	xt_addr "$NS_C" c0 $C4/24 $C6/64
	xt_addr "$NS_R" r0 $R4C/24 $R6C/64
	xt_addr "$NS_R" r1 $R4P/24 $R6P/64
	xt_addr "$NS_P" p0 $P4/24 $P6/64

	# Client and peer know each other's subnet only via the relay.
	ip -n "$NS_C" route add 10.71.2.0/24 via $R4C || die "client route v4"
	ip -n "$NS_C" -6 route add fd00:71:2::/64 via $R6C || die "client route v6"
	ip -n "$NS_P" route add 10.71.1.0/24 via $R4P || die "peer route v4"
	ip -n "$NS_P" -6 route add fd00:71:1::/64 via $R6P || die "peer route v6"

	# Static neighbours: no ARP/ND wait on the XDP path.
	xt_neigh "$NS_C" c0 $R4C $R6C $MAC_RC
	xt_neigh "$NS_R" r0 $C4 $C6 $MAC_C
	xt_neigh "$NS_R" r1 $P4 $P6 $MAC_P
	xt_neigh "$NS_P" p0 $R4P $R6P $MAC_RP

	# XDP_TX / redirect into a veth is only delivered to an end with NAPI.
	# GRO on gives it NAPI, but not every time on this kernel (the peer of
	# test_xdp_state got 0 of 20993 in about one run of ten); an attached
	# XDP program always does. GRO stays on for the userspace relay's trains.
	xt_ns "$NS_C" ethtool -K c0 gro on >/dev/null || die "gro on c0"
	xt_ns "$NS_P" ethtool -K p0 gro on >/dev/null || die "gro on p0"
	# XT_PEER_XDP=0: plain veths, as a container's host end is (the TC path).
	[ "${XT_PEER_XDP:-1}" = 1 ] || return 0
	xt_ns "$NS_C" "$XT_BUILD/xturngen" --xdp-pass c0 || die "XDP_PASS on c0"
	xt_ns "$NS_P" "$XT_BUILD/xturngen" --xdp-pass p0 || die "XDP_PASS on p0"
}

xt_addr() {
	local ns=$1 dev=$2 a4=$3 a6=$4
	ip -n "$ns" addr add "$a4" dev "$dev" || die "addr $a4 on $ns/$dev"
	ip -n "$ns" -6 addr add "$a6" dev "$dev" nodad || die "addr $a6 on $ns/$dev"
	ip -n "$ns" link set "$dev" up || die "link up $ns/$dev"
}

xt_neigh() {
	local ns=$1 dev=$2 a4=$3 a6=$4 mac=$5
	ip -n "$ns" neigh replace "$a4" lladdr "$mac" dev "$dev" nud permanent ||
		die "neigh $a4 on $ns/$dev"
	ip -n "$ns" -6 neigh replace "$a6" lladdr "$mac" dev "$dev" nud permanent ||
		die "neigh $a6 on $ns/$dev"
}

# xt_tx_csum NS IF off|on: with tx checksum offload off the sender computes
# full UDP checksums; on (the veth default), its frames carry
# CHECKSUM_PARTIAL checksums (pseudo-header sum only) to the XDP receiver.
xt_tx_csum() {
	xt_ns "$1" ethtool -K "$2" tx "$3" >/dev/null || die "tx $3 on $1/$2"
}

# UDP datagrams received by the peer namespace so far (v4 + v6, to a socket
# or not, and those it refused: a corrupted one, a full buffer, counts too).
xt_peer_udp_in() {
	# shellcheck disable=SC2016 # awk's own $2
	xt_ns "$NS_P" awk '
		/^Udp: [0-9]/ { s += $2 + $3 + $4 }
		/^Udp6(InDatagrams|NoPorts|InErrors)/ { s += $2 }
		END { print s + 0 }' /proc/net/snmp /proc/net/snmp6
}

# Proves that the relay does not forward: datagrams the client sends to the
# peer never arrive, while the same datagrams sent by the relay do (so the
# probe itself can detect arrival).
xt_assert_isolated() {
	local n0 n1 n2 dst
	n0=$(xt_peer_udp_in)
	for dst in $P4 $P6; do
		# fails at once (no route to host is fine); nothing must arrive
		xt_ns "$NS_C" bash -c "for i in 1 2 3; do echo probe >/dev/udp/$dst/$XT_PEER_PORT; done" 2>/dev/null
	done
	sleep 0.2
	n1=$(xt_peer_udp_in)
	for dst in $P4 $P6; do
		xt_ns "$NS_R" bash -c "for i in 1 2 3; do echo probe >/dev/udp/$dst/$XT_PEER_PORT; done"
	done
	sleep 0.2
	n2=$(xt_peer_udp_in)
	[ "$n1" -eq "$n0" ] || die "relay forwards: peer got $((n1 - n0)) datagrams from the client"
	[ "$n2" -ge $((n1 + 6)) ] || die "isolation probe broken: peer got $((n2 - n1)) of 6 from the relay"
	pass "relay does not forward (client->peer 0 of 6, relay->peer $((n2 - n1)) of 6)"
}

# start_peer: coturn's UDP echo peer on both peer addresses.
start_peer() {
	local a
	for a in $P4 $P6; do
		xt_bg "$XT_TMP/peer-$a.log" "$NS_P" turnutils_peer -L "$a" -p $XT_PEER_PORT
	done
	xt_wait_udp "$NS_P" $XT_PEER_PORT 2 || die "turnutils_peer did not bind"
}

# xt_wait_udp NS PORT N: waits (bounded) until N UDP sockets listen on PORT.
xt_wait_udp() {
	local ns=$1 port=$2 n=$3
	for _ in $(seq 50); do
		[ "$(xt_ns "$ns" ss -Hlun "sport = :$port" | wc -l)" -ge "$n" ] && return 0
		sleep 0.1
	done
	return 1
}

# start_server [--key=value ...]: starts the server under test in the relay
# namespace, listening on r0's addresses and relaying from r1's, plus the
# given coturn-style options (user=, use-auth-secret, static-auth-secret=,
# no-xdp, ...; options coturn does not know are the caller's concern).
# Waits until a STUN Binding request succeeds over IPv4 and IPv6.
start_server() {
	local common=("--listening-ip=$R4C" "--listening-ip=$R6C" "--listening-port=$XT_PORT"
		"--relay-ip=$R4P" "--relay-ip=$R6P" --min-port=50000 --max-port=50999
		"--realm=$XT_REALM")
	XT_SERVER_LOG=$XT_TMP/server.$((${XT_SERVER_N:=0} + 1)).log
	XT_SERVER_N=$((XT_SERVER_N + 1))
	case $XT_SERVER in
	coturn)
		# coturn warns when both mechanisms are given; the secret wins.
		[[ " $* " == *" --use-auth-secret "* ]] || common+=(--lt-cred-mech)
		xt_bg "$XT_SERVER_LOG" "$NS_R" turnserver -n --no-tls --no-dtls --no-cli \
			--no-tcp --log-file=stdout --simple-log \
			--pidfile="$XT_TMP/turnserver.pid" --userdb="$XT_TMP/turndb" \
			"${common[@]}" "$@"
		;;
	xturnd)
		# Our peers are private addresses, which xturnd denies unless
		# allowed (XT_ALLOW_PEERS=0 leaves that to the caller).
		# The relay's veths are XDP tests' (their other ends run an XDP
		# program in another namespace, which auto mode cannot see and
		# takes for a container's: TC); XT_XDP_MODE picks another.
		common+=("--xdp-mode=${XT_XDP_MODE:-native}")
		[ "${XT_ALLOW_PEERS:-1}" = 1 ] &&
			common+=(--allowed-peer-ip=10.71.2.0/24 --allowed-peer-ip=fd00:71:2::/64)
		# nsenter --net, not ip netns exec: xturnd pins its maps in the
		# host's bpffs, which ip netns exec would hide behind a private /sys.
		# XT_SERVER_AS: words run xturnd under (setpriv as another user).
		# shellcheck disable=SC2086
		xt_spawn "$XT_SERVER_LOG" nsenter --net=/run/netns/"$NS_R" ${XT_SERVER_AS:-} \
			"$XT_BUILD/xturnd" \
			"${common[@]}" --bpf-pin-dir="$XT_PIN_DIR" --log-level=debug \
			--control-socket="$XT_CTL" --journal-dir="$XT_TMP/journal" "$@"
		;;
	esac
	XT_SERVER_PID=$XT_BG_PID
	local a ok
	# Cheap poll for the sockets first: a Binding request sent before they
	# exist costs a whole stunclient timeout.
	xt_wait_udp "$NS_R" $XT_PORT 2
	for _ in $(seq 40); do
		kill -0 "$XT_SERVER_PID" 2>/dev/null || break
		ok=1
		for a in $R4C $R6C; do
			timeout 2 ip netns exec "$NS_C" turnutils_stunclient -p $XT_PORT "$a" \
				>"$XT_TMP/stunclient.out" 2>&1 || ok=0
		done
		[ $ok = 1 ] && { xt_log "$XT_SERVER up (pid $XT_SERVER_PID): $*"; return 0; }
		sleep 0.25
	done
	xt_server_log_tail
	die "$XT_SERVER did not answer STUN Binding on $R4C and [$R6C]:$XT_PORT"
}

# stop_server: SIGTERM; xturnd must exit 0 (coturn's status is not ours).
stop_server() {
	[ -n "$XT_SERVER_PID" ] || return 0
	local rc
	xt_stop "$XT_SERVER_PID"; rc=$?
	XT_SERVER_PID=
	if [ "$XT_SERVER" = xturnd ]; then
		if [ $rc -eq 0 ]; then pass "xturnd exited cleanly on SIGTERM"
		else fail "xturnd exit status $rc on SIGTERM"; xt_server_log_tail; fi
	fi
}

# xt_uclient_bg OUT FAMILY(4|6) uclient-args... : turnutils_uclient in the
# client namespace, in the background (XT_BG_PID), towards our listener and
# the echo peer of that family. -c: no RTCP twin allocations; -x asks for an
# IPv6 relay (the default is IPv4, which cannot reach an IPv6 peer).
xt_uclient_bg() {
	local out=$1 fam=$2; shift 2
	local server=$R4C peer=$P4 extra=()
	[ "$fam" = 6 ] && server=$R6C peer=$P6 extra=(-x)
	XT_BG_LIMIT=$XT_TIMEOUT xt_bg "$out" "$NS_C" turnutils_uclient "$@" "${extra[@]}" \
		-c -e "$peer" -r $XT_PEER_PORT -p $XT_PORT "$server"
}

# xt_uclient_summary OUT: "SENT RECEIVED LOST SEND_DROPPED" ("?" if absent)
# from uclient's closing lines, e.g.
#   7: : start_mclient: tot_send_msgs=400, tot_recv_msgs=400
#   7: : Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)
# (the periodic "start_mclient: msz=2, tot_send_msgs=..." lines are not
# matched). uclient computes "lost" as sent - received clamped at 0, so
# callers compare received with the expected count too.
xt_uclient_summary() {
	local sent recv lost dropped
	read -r sent recv < <(sed -nE \
		's/.*start_mclient: tot_send_msgs=([0-9]+), tot_recv_msgs=([0-9]+)$/\1 \2/p' "$1")
	read -r lost dropped < <(sed -nE \
		's/.*Total lost packets ([0-9]+) .*total send dropped ([0-9]+) .*/\1 \2/p' "$1")
	echo "${sent:-?} ${recv:-?} ${lost:-?} ${dropped:-?}"
}

# xt_uclient_verdict NAME OUT RC WANT: passes if the run exited 0 having sent
# and received WANT messages with no loss and no send drops.
xt_uclient_verdict() {
	local name=$1 out=$2 rc=$3 want=$4 sent recv lost dropped
	read -r sent recv lost dropped < <(xt_uclient_summary "$out")
	if [ "$rc" -eq 0 ] && [ "$sent" = "$want" ] && [ "$recv" = "$want" ] &&
		[ "$lost" = 0 ] && [ "$dropped" = 0 ]; then
		pass "$name: $recv/$want messages echoed, 0 lost"
	else
		fail "$name: exit $rc, sent $sent received $recv of $want, lost $lost, send dropped $dropped"
		xt_uclient_tail "$out"
	fi
}

# xt_uclient_tail OUT: the last lines of a uclient run, for a failure report.
xt_uclient_tail() {
	grep -v 'msz=' "$1" | tail -n 15 | sed 's/^/    uclient| /'
}

# xt_xdp_attached NS IF: true if an XDP program is attached to NS/IF.
xt_xdp_attached() {
	ip -n "$1" link show dev "$2" | grep -q 'prog/xdp'
}

# xt_xdp_count INDEX: packets of xturnd's global counter INDEX (enum
# xt_counter in bpf/xturn_kern_user.h), summed over CPUs, read from the
# pinned per-CPU array; empty if the map is not there. Reads the raw value
# bytes (struct xt_count: __u64 packets first, little-endian) so it works
# with or without BTF.
xt_xdp_count() {
	local idx=$1 map=$XT_PIN_DIR/xt_stats sum=0 b
	[ -e "$map" ] || return 0
	# one line per CPU: "0x.. 0x.. ..." (8 bytes), least significant first
	while read -r -a b; do
		sum=$((sum + b[0] + (b[1] << 8) + (b[2] << 16) + (b[3] << 24) +
			(b[4] << 32) + (b[5] << 40) + (b[6] << 48) + (b[7] << 56)))
	done < <(timeout 10 bpftool -j map lookup pinned "$map" key "$idx" 0 0 0 |
		jq -r '.values[].value[0:8] | join(" ")')
	echo $sum
}

# xt_stat_json: xturnstat --json of the server under test (started with
# --stats-socket=$XT_SOCK) into $XT_TMP/stat.json; xt_field NAME reads a
# number from it; xt_map_entries MAP counts a pinned map's entries.
xt_stat_json() {
	timeout 10 "$XT_BUILD/xturnstat" --pin-dir "$XT_PIN_DIR" --socket "$XT_SOCK" --json \
		>"$XT_TMP/stat.json" 2>"$XT_TMP/stat.err" || die "xturnstat: $(cat "$XT_TMP/stat.err")"
}
# gen_field FILE KEY: a number of xturngen's one-line JSON summary.
gen_field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1" | head -n1; }
xt_field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$XT_TMP/stat.json"; }
xt_map_entries() { timeout 10 bpftool -j map dump pinned "$XT_PIN_DIR/$1" | jq length; }

xt_server_log_tail() {
	[ -f "$XT_SERVER_LOG" ] || return 0
	echo "---- last lines of $XT_SERVER log ----"
	tail -n 30 "$XT_SERVER_LOG"
	echo "--------------------------------------"
}

# Ends the test: exit 0 only if nothing failed.
xt_finish() {
	if [ "$XT_FAILED" = 0 ]; then xt_log "all passed"; exit 0; fi
	xt_log "$XT_FAILED check(s) FAILED"; exit 1
}
