#!/usr/bin/env bash
# make bench: xturnd (XDP), xturnd (TC), xturnd --no-xdp and coturn relaying the same
# xturngen load through one namespace topology.
#
#   gen ns: c0 10.72.1.2 <-> r0 10.72.1.1 [relay ns] r1 10.72.2.1 <-> p0 10.72.2.2: peer ns
#
# Client and peer have routes to the relay's subnet only, so nothing but the
# TURN server can move a packet between them (checked before the first run).
#
# Method (per server, per load, per run):
#  * Throughput: xturngen sends ChannelData client->peer, 2 threads. For the
#    XDP server with --live-frames c0: BPF_PROG_RUN live frames of a tiny
#    injector XDP program (tools/xturngen/xturngen_inject.bpf.c), XDP_TX out of c0,
#    one pinned thread per CPU (several M pps; sendmmsg tops out near 1 M,
#    which is all the XDP path was shown to do). Where the kernel refuses
#    live frames (EPERM seen on one machine of this kind), the XDP server
#    gets the socket sends below instead, and the report says so. For
#    xturnd's TC path (xdp-mode=tc), xturnd --no-xdp and
#    coturn with xturngen's UDP GSO sends (a batch of one allocation's
#    datagrams per send; for TC with c0's and p0's tx checksum offload off:
#    the TC program leaves CHECKSUM_PARTIAL datagrams, a local socket's, to
#    the daemon, and a relay's clients and peers are other hosts), which offer more than they relay at a fraction of
#    sendmmsg's CPU. c0 cuts them into datagrams as a NIC would (no UDP
#    segmentation offload), and the relay's veths have GRO on, as a NIC's
#    are by default: each server meets datagrams, and may let the kernel
#    coalesce them (UDP_GRO) or not. Live frames are not used for them:
#    coturn passed no paced step with them (an skb made from a live frame
#    is charged its 4 KiB page, and coturn asks 64 KiB of buffer for its
#    client sockets).
#    The peer is an XDP program, not a process: xturngen --xdp-sink
#    attaches a counting sink (xturngen_sink in the injector's object) to
#    the peer's veth p0 for the throughput trials; it counts every whole
#    UDP datagram (any port) in a per-CPU array and drops it, and passes
#    the rest (ARP, ND, ICMP). Its cost is one short XDP run per packet in
#    p0's NAPI, a fraction of the kernel UDP receive path (skb, IP, UDP
#    lookup, NoPorts) that the sink was before and that was the largest
#    single cost on 2 vCPUs; the 2 vCPUs go to the generator and the relay.
#    It is fair: every server's packets cross r1 -> p0 into the same
#    program (the relay's XDP redirects frames; the socket servers' skbs
#    are first copied by veth into a page with XDP headroom: a small extra
#    cost per packet, far below the receive path the old sink charged every
#    server). Delivery = counted / sent. The latency
#    phase needs real sockets (an echoing peer), so the sink is detached
#    for it (and at exit).
#    First an unpaced trial (offered = what the generator reaches). If it
#    loses <= 0.1 %, that delivered rate is the result and the limit is the
#    generator ("gen"). Otherwise paced trials at 0.9, 0.63, 0.44 x the
#    delivered rate of the unpaced trial (bounded: at most 3 steps); the
#    first with >= 99.9 % delivery gives the result ("relay"); if none
#    passes the result is 0 ("none") -- never a rate that lost packets.
#    One more paced trial bisects between the passing and the last failing
#    rate. Trials last 1.5 s of data plane (setup excluded).
#    On 2 vCPUs the generator shares the machine with the relay and the
#    sink (live frames: injector, relay XDP and the peer's XDP sink all
#    run on the injecting CPU, in softirq after each 64-frame batch): XDP
#    results marked "gen" are lower bounds set by the whole 2-CPU machine.
#  * CPU over the winning trial's whole xturngen run (setup and the 0.5 s
#    drain included, so the % slightly understate the load): the relay process (utime+stime from
#    /proc/PID/stat, all threads) and the whole machine's softirq time
#    (/proc/stat, all CPUs). XDP runs in softirq, so for the XDP server the
#    softirq column is where its work is; it also holds the kernel receive
#    work of every server and of the sink, so compare it across servers
#    rather than reading it as "relay only". Shown as % of one CPU and as
#    (relay process + softirq) ns per delivered packet.
#  * Latency: 20 k pps (10 allocations x 10 channels, 200 B) to an echoing
#    xturngen peer; round trip p50/p99 as the client measures it.
#  * Control plane: N allocations (2000; 500 quick), 4 threads, long-term
#    credentials; xturngen's allocations/s.
#  * Runs: one warm-up run (unpaced trials only, discarded) and BENCH_RUNS
#    (3) measured runs; servers alternate A/B (order reversed every run);
#    medians reported.
#  * Scale (XDP server and coturn, measured runs): SCALE_N allocations
#    (100 000, fewer where the fd limit does not allow: see bench_scale)
#    from four client addresses; allocations/s and the server's bytes of
#    resident memory per allocation.
#  * TLS (every server but TC, measured runs): ChannelData from 10 TLS
#    clients, unpaced (TCP paces them): pps delivered at the sink over a
#    window of the steady state, and the relay's CPU over it; then the
#    same clients to an echoing peer (both directions through the relay):
#    messages relayed a second and the relay's CPU per message.
#  * Multi-queue (XDP server, measured runs, NQ >= 2): the unpaced 200 B
#    10x10 load from one generator thread and from two (each CPU's NAPI
#    on its own veth queue): pps and ns per packet for each.
#  * XDP program cost (fpcost, no traffic): kernel ns per BPF_PROG_TEST_RUN
#    of the pinned program at 1, 10 k, 100 k and 1 M bindings, one binding
#    or a random one of them per frame, both directions, beside a ceiling
#    program (strip the ChannelData header, redirect) run the same way.
# Loads: payload 64/200/1200 B at 100 channels (10 allocations x 10),
# channels 1 (1x1), 100 (10x10), 10000 (100x100) at 200 B.
#
# Output in BUILD/bench/: results.txt (table), results.json, pps.png,
# fpcost.png, tls-mq.png and raw.tsv (every trial). BENCH_QUICK=1: one
# run, no warm-up, 1 s trials, three loads (~1 min); BENCH_LOADS=
# "payload:allocs:channels ..." picks others, BENCH_SERVERS (default
# "xdp tc noxdp coturn") the servers.
# The whole bench is bounded by BENCH_BUDGET seconds
# (default 540): runs that would not fit are skipped and the report says so.
#
# Usage: tests/bench/bench.sh BUILD_DIR      (root; run by `make bench`)
set -u

BUILD=$(cd "${1:-build}" && pwd) || exit 1
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$BUILD/bench
GEN=$BUILD/xturngen
XTURND=$BUILD/xturnd
QUICK=${BENCH_QUICK:-0}
BUDGET=${BENCH_BUDGET:-540}

if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-1}; WARMUP=0; TRIAL_S=1; NALLOC=500; LAT_S=1
	LOADS=${BENCH_LOADS:-"64:10:10 1200:10:10 200:100:100"}
else
	RUNS=${BENCH_RUNS:-3}; WARMUP=1; TRIAL_S=1.5; NALLOC=2000; LAT_S=2
	LOADS=${BENCH_LOADS:-"64:10:10 200:10:10 1200:10:10 200:1:1 200:100:100"}
fi
SERVERS=${BENCH_SERVERS:-"xdp tc noxdp coturn"}
GEN_THREADS=2
NQ=${BENCH_QUEUES:-$(nproc)}
LOSS_MAX=0.1		# percent: >= 99.9 % delivery
STEPS="0.9 0.63 0.44"
LAT_RATE=20000

ID=xb-$$
NS_C=$ID-c NS_R=$ID-r NS_P=$ID-p
C4=10.72.1.2 R4C=10.72.1.1 R4P=10.72.2.1 P4=10.72.2.2
MAC_C=02:72:01:00:00:02 MAC_RC=02:72:01:00:00:01
MAC_RP=02:72:02:00:00:01 MAC_P=02:72:02:00:00:02
SCALE_SRCS="10.72.1.10 10.72.1.11 10.72.1.12 10.72.1.13"
PORT=3478 TLS_PORT=5349 PEER_PORT=4000
PIN_DIR=/sys/fs/bpf/$ID
SINK_PIN=/sys/fs/bpf/$ID-sink	# the sink's counters (host bpffs: nsenter, not ip netns exec)
TMP=
SRV_PID=
NETNS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

cleanup() {
	local rc=$? ns
	trap - EXIT INT TERM
	stop_server
	[ ${#NETNS[@]} = 3 ] && sink_detach
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -d "$PIN_DIR" ] && rm -rf -- "$PIN_DIR"
	[ -n "$TMP" ] && [ -d "$TMP" ] && { [ "${BENCH_KEEP:-0}" = 1 ] &&
		log "logs kept in $TMP" || rm -rf -- "$TMP"; }
	exit "$rc"
}

# The bench's own dependencies (not the Makefile's DEPS): gnuplot draws the
# plot; everything else comes with `make deps`.
check_deps() {
	local t
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, XDP)"
	for t in ip ethtool nsenter ss turnserver bpftool jq awk openssl; do
		command -v "$t" >/dev/null || die "missing tool: $t (make deps)"
	done
	[ -x "$GEN" ] && [ -x "$XTURND" ] && [ -x "$BUILD/tests/bench/fpcost" ] ||
		die "build first (make bench builds what it runs)"
	if ! command -v gnuplot >/dev/null; then
		log "installing gnuplot-nox for the plot"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null ||
			log "gnuplot unavailable: no plot"
	fi
}

# Background processes are started with ip netns exec directly (it execs,
# so $! is the process itself), never through this function.
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

topology() {
	local ns
	for ns in "$NS_C" "$NS_R" "$NS_P"; do
		ip netns add "$ns" || die "ip netns add $ns"
		NETNS+=("$ns")
		ip -n "$ns" link set lo up
	done
	# One queue per CPU, like a NIC with RSS: each queue has its own NAPI,
	# so the XDP path is not held to one CPU.
	local q="numtxqueues $NQ numrxqueues $NQ"
	ip -n "$NS_C" link add c0 address $MAC_C $q type veth \
		peer name r0 address $MAC_RC $q netns "$NS_R" || die "veth c0-r0"
	ip -n "$NS_P" link add p0 address $MAC_P $q type veth \
		peer name r1 address $MAC_RP $q netns "$NS_R" || die "veth p0-r1"
	# The scale phase's extra client sources (one address has ports for
	# some 50 000 sockets at most).
	for s in $SCALE_SRCS; do ip -n "$NS_C" addr add $s/24 dev c0 || die "address $s"; done
	ip -n "$NS_C" addr add $C4/24 dev c0 && ip -n "$NS_R" addr add $R4C/24 dev r0 &&
		ip -n "$NS_R" addr add $R4P/24 dev r1 && ip -n "$NS_P" addr add $P4/24 dev p0 ||
		die "addresses"
	ip -n "$NS_C" link set c0 up && ip -n "$NS_R" link set r0 up &&
		ip -n "$NS_R" link set r1 up && ip -n "$NS_P" link set p0 up || die "link up"
	nsx "$NS_R" sysctl -qw net.ipv4.ip_forward=0 || die "relay ip_forward"
	ip -n "$NS_C" neigh replace $R4C lladdr $MAC_RC dev c0 nud permanent &&
		ip -n "$NS_R" neigh replace $C4 lladdr $MAC_C dev r0 nud permanent &&
		ip -n "$NS_R" neigh replace $P4 lladdr $MAC_P dev r1 nud permanent &&
		ip -n "$NS_P" neigh replace $R4P lladdr $MAC_RP dev p0 nud permanent ||
		die "static neighbours"
	# XDP redirects into a veth are delivered only to an end with NAPI.
	# The relay's ends get GRO like a NIC's (on by default there; a veth
	# has it only on request): every server meets the same receive path.
	nsx "$NS_C" ethtool -K c0 gro on >/dev/null && nsx "$NS_P" ethtool -K p0 gro on >/dev/null &&
		nsx "$NS_R" ethtool -K r0 gro on >/dev/null &&
		nsx "$NS_R" ethtool -K r1 gro on >/dev/null || die "gro on"
	# The relay's UDP GSO sends (xturnd batches a flow's datagrams) are cut
	# into datagrams before they leave, as on a NIC without UDP segmentation
	# offload: a GSO packet crossing the veth whole would reach the kernel
	# XDP sink as one "datagram" (a listening socket would split it).
	nsx "$NS_R" ethtool -K r0 tx-udp-segmentation off >/dev/null &&
		nsx "$NS_R" ethtool -K r1 tx-udp-segmentation off >/dev/null &&
		nsx "$NS_C" ethtool -K c0 tx-udp-segmentation off >/dev/null || die "tx-udp-segmentation"
	# Client and peer have nothing but their connected /24 (the relay's).
	ip -n "$NS_C" route get $P4 >/dev/null 2>&1 && die "client has a route to the peer"
	ip -n "$NS_P" route get $C4 >/dev/null 2>&1 && die "peer has a route to the client"
}


wait_udp() {	# NS PORT
	for _ in $(seq 100); do
		[ -n "$(nsx "$1" ss -Hlun "sport = :$2")" ] && return 0
		sleep 0.05
	done
	return 1
}

wait_tcp() {	# NS PORT
	for _ in $(seq 100); do
		[ -n "$(nsx "$1" ss -Hltn "sport = :$2")" ] && return 0
		sleep 0.05
	done
	return 1
}

start_server() {	# xdp|tc|noxdp|coturn [scale|tls]
	local log=$TMP/server-$1.log tx=on ports=(--min-port=50000 --max-port=59999) tls=()
	# The scale phase: room for SCALE_N relayed ports.
	[ "${2:-}" = scale ] && ports=(--min-port=10000 --max-port=59999)
	[ "${2:-}" = tls ] && tls=("--cert=$TMP/cert.pem" "--pkey=$TMP/key.pem")
	# Full checksums from client and (echoing) peer for TC: see the top.
	[ "$1" = tc ] && tx=off
	nsx "$NS_C" ethtool -K c0 tx $tx >/dev/null || die "tx $tx on c0"
	nsx "$NS_P" ethtool -K p0 tx $tx >/dev/null || die "tx $tx on p0"
	local common=("--listening-ip=$R4C" "--listening-port=$PORT" "--relay-ip=$R4P"
		"${ports[@]}" --realm=bench --user=u:p "${tls[@]}")
	case $1 in
	xdp|tc|noxdp)
		local x=(--xdp-mode=native)
		[ "$1" = tc ] && x=(--xdp-mode=tc)
		[ "$1" = noxdp ] && x=(--no-xdp)
		# unauth-rate-limit=0: the generator opens thousands of allocations
		# from one address, each with its 401 (coturn does not limit them).
		# nsenter, not ip netns exec: the pins stay in the host's bpffs.
		nsenter --net=/run/netns/"$NS_R" "$XTURND" "${common[@]}" "${x[@]}" \
			--allowed-peer-ip=10.72.2.0/24 --max-channels=4096 --log-level=warn \
			--unauth-rate-limit=0 \
			--bpf-pin-dir="$PIN_DIR" >>"$log" 2>&1 &
		;;
	coturn)
		# UDP only (and TLS for the TLS phase), no CLI; relay threads as
		# coturn likes (one per CPU).
		local only=(--no-tcp --no-tcp-relay --no-dtls --no-cli)
		[ ${#tls[@]} = 0 ] && only+=(--no-tls)
		ip netns exec "$NS_R" turnserver -n "${only[@]}" \
			--lt-cred-mech --log-file=stdout --simple-log --no-stdout-log \
			--pidfile="$TMP/turnserver.pid" --userdb="$TMP/turndb" "${common[@]}" \
			>>"$log" 2>&1 &
		;;
	esac
	SRV_PID=$!
	wait_udp "$NS_R" $PORT || { tail "$log" >&2; die "$1 does not listen"; }
	[ ${#tls[@]} = 0 ] || wait_tcp "$NS_R" $TLS_PORT ||
		{ tail "$log" >&2; die "$1 does not listen for TLS"; }
	[ "$1" != tc ] || nsx "$NS_R" tc filter show dev r0 ingress | grep -q xturn_tc ||
		die "no TC program on r0"
	if [ "$1" = xdp ] || [ "$1" = tc ]; then
		[ "$1" = tc ] || ip -n "$NS_R" link show r0 | grep -q 'prog/xdp' || die "no XDP on r0"
		# The relay forwards nothing itself: xturnd's route lookups go
		# through its own device with forwarding on (xturn0). Without it
		# the XDP rows would measure the kernel's path: stop instead.
		ip -n "$NS_R" link show xturn0 >/dev/null 2>&1 ||
			die "xturnd made no lookup device (xturn0): see $log"
	fi
	sleep 0.2
	kill -0 "$SRV_PID" 2>/dev/null || { tail "$log" >&2; die "$1 exited"; }
}

stop_server() {
	[ -n "$SRV_PID" ] || return 0
	kill -TERM "$SRV_PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
}

# A numeric field of xturngen's flat JSON.
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }

sink_attach() {
	nsenter --net=/run/netns/"$NS_P" "$GEN" --xdp-sink p0 --pin "$SINK_PIN" ||
		die "cannot attach the XDP sink to p0"
}
sink_detach() {
	nsenter --net=/run/netns/"$NS_P" "$GEN" --xdp-sink p0 --detach --pin "$SINK_PIN"
}
# Datagrams that reached the peer: the XDP sink's packet counter.
peer_rx() { percpu_u64 "$SINK_PIN"; }
# Relay process CPU, clock ticks.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$SRV_PID/stat"; }
# Machine softirq time, clock ticks.
softirq_ticks() { awk '/^cpu / { print $8 }' /proc/stat; }

# The first u64 of key 0 of a pinned per-CPU array, summed over CPUs (see
# tests/e2e/lib.sh); 0 if the map is not there.
percpu_u64() {
	local map=$1 sum=0 b
	[ -e "$map" ] || { echo 0; return; }
	while read -r -a b; do
		sum=$((sum + b[0] + (b[1] << 8) + (b[2] << 16) + (b[3] << 24) +
			(b[4] << 32) + (b[5] << 40) + (b[6] << 48) + (b[7] << 56)))
	done < <(bpftool -j map lookup pinned "$map" key 0 0 0 0 |
		jq -r '.values[].value[0:8] | join(" ")')
	echo $sum
}
# xt_stats[XT_CNT_C2P] packets.
xdp_c2p() { percpu_u64 "$PIN_DIR/xt_stats"; }

# Every xturngen run takes its client ports from a fresh window of the
# ephemeral range: an allocation whose release (Refresh 0) a backlogged
# server dropped still owns its 5-tuple until it expires, and a new socket
# on that port would get 437 (allocation mismatch).
PORT_WIN=0
gen_once() {	# OUT xturngen-client-args...
	local out=$1 lo; shift
	lo=$((10000 + PORT_WIN % 20 * 2500))
	PORT_WIN=$((PORT_WIN + 1))
	nsx "$NS_C" sysctl -qw net.ipv4.ip_local_port_range="$lo $((lo + 2499))"
	timeout -k 5 120 ip netns exec "$NS_C" "$GEN" -s $R4C:$PORT -u u -w p --json "$@" \
		>"$out" 2>"$out.err"
}
# A server still draining the backlog of an unpaced trial can time out a
# few setup transactions (coturn then answers a retransmitted Allocate with
# 437); such a run is repeated once on fresh ports.
gen() {
	gen_once "$@" && return 0
	log "xturngen failed ($(grep -m1 'xturngen:.*allocation' "$1.err")); retrying"
	sleep 1
	gen_once "$@"
}

# trial SERVER LEN ALLOCS CHANS RATE: one throughput trial; prints
# "sent offered_pps delivered_pps loss_pct proc_cpu_pct softirq_pct xdp_frac".
trial() {
	local srv=$1 len=$2 na=$3 nc=$4 rate=$5 out=$TMP/trial.json
	local rx0 rx1 p0 p1 s0 s1 x0 x1 t0 t1 sent live=()
	rx0=$(peer_rx); p0=$(proc_ticks); s0=$(softirq_ticks); x0=0
	{ [ "$srv" = xdp ] || [ "$srv" = tc ]; } && x0=$(xdp_c2p)
	[ "$srv" = xdp ] && [ ! -e "$TMP/no-live" ] && live=(--live-frames c0)
	t0=$(date +%s.%N)
	gen "$out" -a "$na" -c "$nc" -p $P4:$PEER_PORT -l "$len" -r "$rate" -d $TRIAL_S \
		-t $GEN_THREADS "${live[@]}" || {
		if [ ${#live[@]} != 0 ] && grep -q 'the kernel refuses BPF_PROG_RUN live frames' "$out.err"; then
			log "the kernel refuses live frames (BPF_PROG_RUN: EPERM): XDP gets socket sends"
			touch "$TMP/no-live"	# trial runs in a subshell
			trial "$@"
			return
		fi
		echo "gen failed: $(tail -n 3 "$out.err")" >&2; echo "0 0 0 100 0 0 0"; return; }
	t1=$(date +%s.%N)
	rx1=$(peer_rx); p1=$(proc_ticks); s1=$(softirq_ticks); x1=0
	{ [ "$srv" = xdp ] || [ "$srv" = tc ]; } && x1=$(xdp_c2p)
	sent=$(field "$out" sent)
	awk -v sent="$sent" -v off="$(field "$out" offered_pps)" -v d="$(field "$out" duration_s)" \
		-v rx=$((rx1 - rx0)) -v p=$((p1 - p0)) -v s=$((s1 - s0)) -v x=$((x1 - x0)) \
		-v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
		-v hz="$(getconf CLK_TCK)" 'BEGIN {
		loss = sent > 0 ? 100 * (sent - rx) / sent : 100; if (loss < 0) loss = 0
		# (parenthesized: in a print list, ">" would be a redirection)
		printf "%d %.0f %.0f %.3f %.1f %.1f %.3f\n", sent, off, (d > 0 ? rx / d : 0), loss,
			100 * p / hz / wall, 100 * s / hz / wall, (rx > 0 ? x / rx : 0) }'
}

# passes LOSS_PCT: true if the delivery was >= 99.9 %.
passes() { awk -v l="$1" -v m=$LOSS_MAX 'BEGIN { exit !(l <= m) }'; }

# step_trial SERVER RUN LOAD RATE: a paced trial, recorded in raw.tsv;
# prints its result line.
step_trial() {
	local len na nc r
	IFS=: read -r len na nc <<<"$3"
	r=$(trial "$1" "$len" "$na" "$nc" "$4")
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$r" | tr ' ' '\t' >>"$OUT/raw.tsv"
	echo "$r"
}

# bench_load SERVER RUN LOAD: the >= 99.9 % delivery rate of one load. The
# warm-up run (0) only does the unpaced trial.
bench_load() {
	local srv=$1 run=$2 load=$3 r max loss res step rate fail limit=none
	r=$(step_trial "$srv" "$run" "$load" 0)
	read -r _ _ max loss _ <<<"$r"
	sleep 0.5	# let the server drain its socket buffers
	[ "$run" -ge 1 ] || return 0
	if passes "$loss"; then
		res=$r limit=gen
	else
		res="0 0 0 100 0 0 0" fail=$max
		for step in $STEPS; do
			rate=$(awk -v m="$max" -v s="$step" 'BEGIN { printf "%.0f", m * s }')
			[ "$rate" -ge 100 ] || break
			r=$(step_trial "$srv" "$run" "$load" "$rate")
			read -r _ _ _ loss _ <<<"$r"
			if passes "$loss"; then
				res=$r limit=relay
				break
			fi
			fail=$rate
		done
		# One bisection between the last failing and the passing rate.
		if [ $limit = relay ]; then
			rate=$(awk -v a="$rate" -v b="$fail" 'BEGIN { printf "%.0f", (a + b) / 2 }')
			r=$(step_trial "$srv" "$run" "$load" "$rate")
			read -r _ _ _ loss _ <<<"$r"
			passes "$loss" && res=$r
		fi
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$run" "$load" "$limit" "$max" "$res" |
		tr ' ' '\t' >>"$OUT/results.tsv"
	log "  $srv $load: $(awk -v r="$res" 'BEGIN { split(r, a, " "); printf "%.0f pps at %.3f %% loss", a[3], a[4] }') ($limit; unpaced delivered $max pps)"
}

bench_latency() {	# SERVER RUN
	local out=$TMP/lat.json pj=$TMP/lat-peer.json pid
	ip netns exec "$NS_P" "$GEN" --peer -L $P4:$PEER_PORT --ports 10 --echo --json \
		-d $((LAT_S + 20)) >"$pj" 2>/dev/null &
	pid=$!
	wait_udp "$NS_P" $PEER_PORT || die "echo peer does not listen"
	gen "$out" -a 10 -c 10 -p $P4:$PEER_PORT -l 200 -r $LAT_RATE -d $LAT_S -t 1 ||
		log "latency run failed: $(tail -n 2 "$out.err")"
	kill -INT $pid; wait $pid
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(field "$out" rtt_p50_us)" \
		"$(field "$out" rtt_p99_us)" "$(field "$out" echo_received)" >>"$OUT/latency.tsv"
}

bench_allocs() {	# SERVER RUN
	local out=$TMP/alloc.json
	gen "$out" -a $NALLOC -c 1 -p $P4:$PEER_PORT -r 10 -d 0.1 -t 4 ||
		log "allocation run failed: $(tail -n 2 "$out.err")"
	printf '%s\t%s\t%s\n' "$1" "$2" "$(field "$out" allocs_per_s)" >>"$OUT/allocs.tsv"
}

# The largest control-plane load this machine allows: SCALE_N allocations
# (100 000, or fewer where RLIMIT_NOFILE's hard limit, which root without
# CAP_SYS_RESOURCE cannot raise, leaves no room: one socket each on both
# sides) from the four SCALE_SRCS, each with a permission and a channel,
# then released. allocations/s (xturngen's) and the server's memory per
# allocation: its peak RSS during the run less its RSS before, over N.
bench_scale() {	# SERVER RUN
	local out=$TMP/scale.json rss0 peak=0 r pid
	start_server "$1" scale
	rss0=$(rss_kib)
	nsx "$NS_C" sysctl -qw net.ipv4.ip_local_port_range="10000 60999"
	timeout -k 5 120 ip netns exec "$NS_C" "$GEN" -s $R4C:$PORT -u u -w p --json \
		-a "$SCALE_N" -S "${SCALE_SRCS// /,}" -c 1 -p $P4:$PEER_PORT -r 10 -d 0.1 -t 4 \
		>"$out" 2>"$out.err" &
	pid=$!
	while kill -0 $pid 2>/dev/null; do
		r=$(rss_kib)
		[ "$r" -gt "$peak" ] && peak=$r
		sleep 0.1
	done
	wait $pid || log "scale run failed: $(tail -n 2 "$out.err")"
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$SCALE_N" "$(field "$out" allocs_per_s)" \
		"$(((peak - rss0) * 1024 / SCALE_N))" >>"$OUT/scale.tsv"
	stop_server
}
# The TLS clients: 10 allocations, one connection and channel each, 200 B,
# unpaced (TCP's flow control paces them). tls_gen OUT SECONDS
tls_gen() {
	timeout -k 5 120 ip netns exec "$NS_C" "$GEN" -s $R4C:$TLS_PORT --transport tls -u u -w p \
		--json -a 10 -c 1 -p $P4:$PEER_PORT -l 200 -r 0 -t 2 -d "$2" >"$1" 2>"$1.err"
}

# tls_row FILE SERVER RUN T0 T1 TICKS COUNT A B: one row of FILE: SERVER,
# RUN, COUNT messages a second between T0 and T1, A and B as they are,
# the relay's CPU % over those TICKS.
tls_row() {
	awk -v srv="$2" -v run="$3" -v t0="$4" -v t1="$5" -v p="$6" -v n="$7" -v a="$8" \
		-v b="$9" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		printf "%s\t%s\t%.0f\t%d\t%d\t%.1f\n", srv, run, n / (t1 - t0), a, b,
			100 * p / hz / (t1 - t0) }' >>"$1"
}

# The TLS clients to the peer's sink: delivered pps, and the relay's CPU
# per packet.
bench_tls() {	# SERVER RUN
	local out=$TMP/tls.json rx0 rx1 p0 p1 t0 t1 gpid
	# TCP crosses as MTU-sized segments, as on a wire (GRO on r0 merges
	# them again): the XDP program on r0 takes segmentation offload from
	# c0 anyway (veth), and coturn would otherwise get 64 KB segments.
	nsx "$NS_C" ethtool -K c0 tso off gso off >/dev/null || die "tso off on c0"
	start_server "$1" tls
	sink_attach
	# Counted over a window of the steady state, 1 s in: what the sockets
	# buffer (MBs per connection) would otherwise count as relayed at the
	# start, and drain after the clients stop.
	tls_gen "$out" "$(awk -v t="$TRIAL_S" 'BEGIN { print t + 2 }')" &
	gpid=$!
	sleep 1
	rx0=$(peer_rx); p0=$(proc_ticks); t0=$(date +%s.%N)
	sleep "$TRIAL_S"
	rx1=$(peer_rx); p1=$(proc_ticks); t1=$(date +%s.%N)
	wait "$gpid" || log "TLS run failed: $(tail -n 2 "$out.err")"
	sink_detach
	tls_row "$OUT/tls.tsv" "$1" "$2" "$t0" "$t1" $((p1 - p0)) $((rx1 - rx0)) \
		"$(field "$out" sent)" $((rx1 - rx0))
	bench_tls_echo "$1" "$2"
	stop_server
	nsx "$NS_C" ethtool -K c0 tso on gso on >/dev/null || die "tso on on c0"
}

# Media both ways, as in a call: the same TLS clients to an echoing peer,
# whose replies the relay writes back into the connections. What counts
# is the echoes back at the clients (each crossed the relay twice) in a
# steady-state window between the clients' progress lines of second 1 and
# second 1 + W (the TLS setup, which takes coturn seconds, and the drain
# of what the sockets buffer stay out): 2 x echoes a second, and the
# relay's CPU over that window.
bench_tls_echo() {	# SERVER RUN
	local out=$TMP/tls-echo.json pj=$TMP/tls-peer.json pid gpid p0 p1 t0= t1= e0 e1 s0 s1 w
	w=$(awk -v t="$TRIAL_S" 'BEGIN { print int(t + 0.999) }')
	ip netns exec "$NS_P" "$GEN" --peer -L $P4:$PEER_PORT --ports 1 --echo --json \
		-d $((w + 30)) >"$pj" 2>/dev/null &
	pid=$!
	wait_udp "$NS_P" $PEER_PORT || die "echo peer does not listen"
	tls_gen "$out" $((w + 2)) &
	gpid=$!
	if wait_line "$out.err" "^client: t=1s "; then p0=$(proc_ticks); t0=$(date +%s.%N); fi
	if wait_line "$out.err" "^client: t=$((w + 1))s "; then
		p1=$(proc_ticks); t1=$(date +%s.%N)
	fi
	wait "$gpid" || log "TLS echo run failed: $(tail -n 2 "$out.err")"
	kill -INT $pid; wait $pid
	[ -n "$t0" ] && [ -n "$t1" ] || { log "TLS echo run: no steady-state window"; return; }
	e0=$(progress "$out.err" 1 echo_rx); e1=$(progress "$out.err" $((w + 1)) echo_rx)
	s0=$(progress "$out.err" 1 sent); s1=$(progress "$out.err" $((w + 1)) sent)
	tls_row "$OUT/tls-echo.tsv" "$1" "$2" "$t0" "$t1" $((p1 - p0)) $((2 * (e1 - e0))) \
		$((s1 - s0)) $((e1 - e0))
}

# wait_line FILE REGEX: until a line of FILE matches (at most 30 s).
wait_line() {
	for _ in $(seq 3000); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	return 1
}

# progress FILE SECOND FIELD: FIELD of the client's progress line of SECOND.
progress() { sed -n "s/^client: t=$2s.* $3=\([0-9]*\).*/\1/p" "$1"; }

# The XDP path fed from one CPU and from two: a veth delivers on the
# sending CPU's NAPI for the queue the flow hashed to (NQ queues), so one
# generator thread drives one of them and two threads two, as two NIC
# queues would. Unpaced, 200 B, 10x10 channels: delivered pps and (relay +
# softirq) ns a packet, which should stay flat as the threads double.
bench_mq() {	# SERVER RUN
	local t r
	for t in 1 2; do
		r=$(GEN_THREADS=$t trial "$1" 200 10 10 0)
		printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$t" "$r" | tr ' ' '\t' >>"$OUT/mq.tsv"
		sleep 0.5
	done
}

# The relay process's resident memory, KiB.
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$SRV_PID/status" 2>/dev/null || echo 0; }

bench_server() {	# SERVER RUN
	local load
	log "run $2: $1"
	start_server "$1"
	bench_allocs "$1" "$2"
	bench_latency "$1" "$2"
	sink_attach
	for load in $LOADS; do bench_load "$1" "$2" "$load"; done
	[ "$2" -ge 1 ] && [ "$1" = xdp ] && [ "$NQ" -ge 2 ] && bench_mq "$1" "$2"
	sink_detach
	stop_server
	if [ "$2" -ge 1 ] && { [ "$1" = xdp ] || [ "$1" = coturn ]; }; then
		bench_scale "$1" "$2"
	fi
	[ "$2" -ge 1 ] && [ "$1" != tc ] && bench_tls "$1" "$2"
	return 0
}

# The XDP program's cost per packet against the ceiling program as the
# bindings grow (tests/bench/fpcost.c; its own namespaces, ~10 s).
fp_cost() {
	local n=1,10000,100000,1000000
	[ "$QUICK" = 1 ] && n=1,10000,100000
	log "XDP program cost per packet at $n bindings (fpcost)"
	"$BUILD/tests/bench/fpcost" -k 20000 -n $n "$BUILD/tests/bench/ceiling.bpf.o" \
		>"$OUT/fpcost.tsv" 2>"$TMP/fpcost.err" ||
		{ log "fpcost failed: $(tail -n 2 "$TMP/fpcost.err")"; rm -f "$OUT/fpcost.tsv"; }
}

main() {
	local t_start run order s
	t_start=$(date +%s)
	check_deps
	mkdir -p "$OUT"
	rm -f "$OUT"/{raw,results,latency,allocs,fpcost,scale,tls,tls-echo,mq}.tsv
	TMP=$(mktemp -d "/tmp/$ID.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	ulimit -n "$(ulimit -Hn)"	# 2000 allocations = 2000 sockets
	SCALE_N=$(( $(ulimit -Hn) - 1500 ))
	[ "$SCALE_N" -gt 100000 ] && SCALE_N=100000
	[ "$QUICK" = 1 ] && [ "$SCALE_N" -gt 10000 ] && SCALE_N=10000
	topology
	# A throwaway certificate for the TLS phase.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=xturn-bench -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
		die "openssl req (a certificate for the TLS phase)"
	log "topology $ID ready; loads (payload:allocs:channels) $LOADS; $RUNS run(s) + $WARMUP warm-up"
	local skipped=0 per_run=0 t_run
	for ((run = 1 - WARMUP; run <= RUNS; run++)); do
		t_run=$(date +%s)
		if [ $per_run -gt 0 ] && [ $((t_run - t_start + per_run)) -gt "$BUDGET" ]; then
			skipped=$((RUNS - run + 1))
			log "time budget ${BUDGET}s: skipping $skipped run(s)"
			break
		fi
		order=$SERVERS
		[ $((run % 2)) = 0 ] && order=$(echo $SERVERS | tr ' ' '\n' | tac | tr '\n' ' ')
		for s in $order; do bench_server "$s" "$run"; done
		per_run=$(($(date +%s) - t_run))
	done
	fp_cost
	python3 "$HERE/report.py" "$OUT" "$skipped" "$(($(date +%s) - t_start))" ||
		die "report failed"
	[ -e "$TMP/no-live" ] && echo "generator: the kernel refused live frames (BPF_PROG_RUN: EPERM);" \
		"every server got xturngen's socket sends" >>"$OUT/results.txt"
	if command -v gnuplot >/dev/null; then
		gnuplot "$OUT/plot.gp" || log "gnuplot failed"
	fi
	cat "$OUT/results.txt"
	log "results in $OUT (results.txt, results.json, pps.png, fpcost.png, tls-mq.png, raw.tsv)"
}

main "$@"
