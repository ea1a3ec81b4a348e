#!/usr/bin/env bash
# coturn's turnutils_uclient (client ns) through the server under test (relay
# ns) to turnutils_peer (peer ns), over IPv4 and IPv6:
#   channel  ChannelData, long-term credentials
#   hexkey   ChannelData, a user configured by its key (user=NAME:0xMD5, coturn's)
#   send     Send/Data indications (-s), long-term credentials
#   rest     ChannelData, REST credentials (-W, use-auth-secret)
#   csum     ChannelData with full UDP checksums from both senders (tx off)
#   tcp      ChannelData with the client on TCP (-t; relayed over UDP), xturnd only
# Each run must deliver every message and lose none. xturnd runs every
# scenario twice: with XDP and with --no-xdp.
# Usage: tests/e2e/test_uclient.sh BUILD_DIR   (XT_SERVER=coturn|xturnd)
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland SECRET=north-wind
HEXUSER=bob HEXPASS=builder
SESSIONS=2 MSGS=200 LEN=160 GAP_MS=5

xt_init "${1:-build}"
xt_topology
start_peer
xt_assert_isolated

UC_PIDS=()
UC_NAMES=()

# uclient_start NAME uclient-args... : one uclient per family, in background.
uclient_start() {
	local name=$1; shift
	local fam
	for fam in 4 6; do
		xt_uclient_bg "$XT_TMP/uc-$name-v$fam.out" $fam "$@" \
			-m $SESSIONS -n $MSGS -l $LEN -z $GAP_MS
		UC_PIDS+=("$XT_BG_PID")
		UC_NAMES+=("$name-v$fam")
	done
}

# Waits for every started uclient: each must deliver SESSIONS * MSGS.
uclient_check_all() {
	local i rc
	for i in "${!UC_PIDS[@]}"; do
		xt_wait "${UC_PIDS[$i]}"; rc=$?
		xt_uclient_verdict "$label/${UC_NAMES[$i]}" "$XT_TMP/uc-${UC_NAMES[$i]}.out" \
			$rc $((SESSIONS * MSGS))
	done
	UC_PIDS=() UC_NAMES=()
}

# xdp_check MODE: with XDP, the program is attached to both relay interfaces;
# with --no-xdp, to neither.
xdp_check() {
	local dev
	for dev in r0 r1; do
		if xt_xdp_attached "$NS_R" $dev; then
			if [ "$1" = xdp ]; then pass "$label: XDP attached to $dev"
			else fail "$label: XDP attached to $dev despite --no-xdp"; fi
		else
			if [ "$1" = xdp ]; then fail "$label: no XDP program on $dev"
			else pass "$label: no XDP program on $dev"; fi
		fi
	done
}

# xdp_counts: "C2P P2C" packets forwarded in XDP so far ("- -" if no map).
xdp_counts() {
	local c p
	c=$(xt_xdp_count 0) p=$(xt_xdp_count 1)
	echo "${c:--} ${p:--}"
}

# xdp_expect BEFORE_C2P BEFORE_P2C N: exactly the N UDP ChannelData
# messages since BEFORE went through XDP both ways (the send scenario's
# Send/Data indications are STUN, the tcp one's ChannelData comes over TCP:
# neither counts).
xdp_expect() {
	local c2p p2c
	read -r c2p p2c < <(xdp_counts)
	if [ "$1$2$c2p$p2c" != "${1//-/}${2//-/}${c2p//-/}${p2c//-/}" ]; then
		fail "$label: no counters in $XT_PIN_DIR/xt_stats"
	elif [ $((c2p - $1)) = "$3" ] && [ $((p2c - $2)) = "$3" ]; then
		pass "$label: XDP forwarded $((c2p - $1)) client->peer, $((p2c - $2)) peer->client ($3 each)"
	else
		fail "$label: XDP forwarded $((c2p - $1)) client->peer, $((p2c - $2)) peer->client, expected $3 each"
	fi
}

# daemon_expect N: the daemon itself relayed exactly N messages each way
# (what XDP did not carry: Send/Data indications, the TCP client's
# ChannelData, and everything under --no-xdp).
daemon_expect() {
	local c2p p2c
	xt_stat_json
	c2p=$(( $(xt_field c2p_udp_packets) + $(xt_field c2p_tcp_packets) ))
	p2c=$(( $(xt_field p2c_udp_packets) + $(xt_field p2c_tcp_packets) ))
	if [ "$c2p" = "$1" ] && [ "$p2c" = "$1" ]; then
		pass "$label: the daemon relayed $c2p client->peer, $p2c peer->client ($1 each)"
	else
		fail "$label: the daemon relayed ${c2p:-?} client->peer, ${p2c:-?} peer->client, expected $1 each"
	fi
}

# acct_expect FILE N XDP: the accounting log has one valid record per ended
# allocation, with every field tools rely on, and its packets sum to N each
# way, XDP_N of them each way through XDP (so no binding's XDP count was
# lost when its map entry went).
acct_expect() {
	local out
	if out=$(python3 - "$@" <<'PY' 2>&1); then pass "$label: accounting: $out"; else fail "$label: accounting: $out"; fi
import json, sys
path, n, xdp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = {"event", "id", "user", "realm", "client", "transport", "relays", "start", "end",
        "duration_s", "reason", "c2p", "p2c"}
recs = [json.loads(line) for line in open(path)]
assert recs, "no records"
ids = set()
sums = {"c2p": [0, 0, 0], "p2c": [0, 0, 0]}
for r in recs:
    assert want <= set(r), "missing %s" % (want - set(r))
    assert r["event"] == "allocation_end" and r["id"] not in ids, r
    ids.add(r["id"])
    assert r["reason"] in ("deleted", "shutdown", "connection closed", "expired"), r
    assert r["transport"] in ("udp", "tcp") and r["relays"] and r["realm"], r
    for d in sums:
        for i, k in enumerate(("packets", "xdp_packets", "bytes")):
            sums[d][i] += r[d][k]
        assert r[d]["xdp_packets"] <= r[d]["packets"] and r[d]["xdp_bytes"] <= r[d]["bytes"], r
for d, (p, x, b) in sums.items():
    assert p == n and x == xdp, "%s: %d packets (%d in XDP), want %d (%d)" % (d, p, x, n, xdp)
print("%d records; %d packets each way, %d in XDP, %d payload bytes c2p"
      % (len(recs), n, xdp, sums["c2p"][2]))
PY
}

# One round: every scenario against a server started with the extra args.
# mode: coturn, xdp or no-xdp.
run_round() {
	local mode=$1; shift
	local c0 p0 per_group=$((2 * SESSIONS * MSGS))	# two families
	local failed0=$XT_FAILED
	local stats=()
	label=$mode
	[ "$XT_SERVER" = xturnd ] && label=xturnd-$mode stats=(--stats-socket="$XT_SOCK"
		--accounting-log="$XT_TMP/acct-$mode.json")

	# bob's line carries only MD5(bob:realm:builder), as coturn's turnadmin -k prints it.
	hexkey=0x$(printf '%s:%s:%s' $HEXUSER "$XT_REALM" $HEXPASS | md5sum | cut -d' ' -f1)
	start_server "$@" "${stats[@]}" --user=$USER:$PASS --user=$HEXUSER:$hexkey
	[ "$mode" = coturn ] || xdp_check "$mode"
	xt_assert_isolated	# with the server (and its XDP program) up too
	read -r c0 p0 < <(xdp_counts)
	uclient_start channel -u $USER -w $PASS
	uclient_start hexkey -u $HEXUSER -w $HEXPASS
	uclient_start send -s -u $USER -w $PASS
	# coturn runs with --no-tcp here; xturnd serves TCP on the same port.
	[ "$mode" = coturn ] || uclient_start tcp -t -u $USER -w $PASS
	uclient_check_all
	# Full checksums from both ends instead of CHECKSUM_PARTIAL frames.
	xt_tx_csum "$NS_C" c0 off
	xt_tx_csum "$NS_P" p0 off
	uclient_start csum -u $USER -w $PASS
	uclient_check_all
	xt_tx_csum "$NS_C" c0 on
	xt_tx_csum "$NS_P" p0 on
	case $mode in
	xdp) xdp_expect "$c0" "$p0" $((3 * per_group)); daemon_expect $((2 * per_group)) ;;
	no-xdp) daemon_expect $((5 * per_group)) ;;
	esac
	[ "$XT_FAILED" = "$failed0" ] || xt_server_log_tail
	stop_server
	case $mode in
	xdp) acct_expect "$XT_TMP/acct-$mode.json" $((5 * per_group)) $((3 * per_group)) ;;
	no-xdp) acct_expect "$XT_TMP/acct-$mode.json" $((5 * per_group)) 0 ;;
	esac
	rm -f "$XT_TMP/acct-$mode.json"

	failed0=$XT_FAILED
	start_server "$@" "${stats[@]}" --use-auth-secret --static-auth-secret=$SECRET
	read -r c0 p0 < <(xdp_counts)
	# uclient derives the username "expiry:alice" and its HMAC password.
	uclient_start rest -W $SECRET -u $USER
	uclient_check_all
	case $mode in
	xdp) xdp_expect "$c0" "$p0" $per_group; daemon_expect 0 ;;
	no-xdp) daemon_expect $per_group ;;
	esac
	[ "$XT_FAILED" = "$failed0" ] || xt_server_log_tail
	stop_server
}

if [ "$XT_SERVER" = xturnd ]; then
	run_round xdp
	run_round no-xdp --no-xdp
else
	run_round coturn
fi
xt_finish
