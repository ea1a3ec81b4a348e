#!/usr/bin/env bash
# xturnd as its systemd unit runs it: user nobody (for the unit's xturn),
# no root, exactly the capabilities of the unit's AmbientCapabilities (read
# from userspace/daemon/xturnd.service, so the two cannot drift). It loads
# and attaches XDP, makes its lookup device, relays ChannelData through XDP
# (the kernel's counter moves, the daemon relays none itself), and on
# SIGTERM detaches and unpins everything.
# Usage: tests/e2e/test_unprivileged.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland PEER_PORT=4000
UNIT=$(dirname "$0")/../../userspace/daemon/xturnd.service

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
caps=$(sed -n 's/^AmbientCapabilities=//p' "$UNIT")
[ -n "$caps" ] || die "no AmbientCapabilities in $UNIT"
# CAP_NET_ADMIN CAP_BPF -> +net_admin,+bpf (setpriv's spelling)
set_caps=$(for c in $caps; do c=${c#CAP_}; printf '+%s,' "${c,,}"; done)
set_caps=${set_caps%,}
xt_topology
# What the unit gets from systemd: a runtime dir, a pin dir of its own in
# the host's bpffs (ExecStartPre) seen through the runtime dir (BindPaths:
# systemd mounts /sys/fs/bpf 0700, so the user cannot reach it there), and a
# binary it can read. The bind is made in a mount namespace of xturnd's
# own, as systemd makes it; the pins stay in the host's bpffs.
grep -q '^BindPaths=/sys/fs/bpf/xturn:/run/xturn/bpf$' "$UNIT" &&
	grep -q '^ExecStart=.* --bpf-pin-dir=/run/xturn/bpf$' "$UNIT" ||
	die "the unit no longer binds the pin dir into /run/xturn/bpf: update this test"
bin=$XT_TMP/bin
mkdir -p "$bin" "$XT_TMP/run/bpf" "$XT_PIN_DIR"
chmod 755 "$XT_TMP"
cp "$XT_BUILD/xturnd" "$XT_BUILD/xturngen" "$XT_BUILD/xturnstat" "$bin/"
chown nobody:nogroup "$XT_TMP/run" "$XT_PIN_DIR"
printf '%s\n' '#!/bin/sh' \
	'mount --make-rprivate / && mount --bind "$1" "$2" || exit 1' 'shift 2' \
	"exec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=$set_caps \
--ambient-caps=$set_caps --bounding-set=-all,$set_caps \"\$@\"" >"$bin/as-unit"
chmod 755 "$bin/as-unit"
XT_BUILD=$bin
XT_SOCK=$XT_TMP/run/xturnd.sock
XT_SERVER_AS="unshare -m $bin/as-unit $XT_PIN_DIR $XT_TMP/run/bpf"
start_server --user=$USER:$PASS --stats-socket="$XT_SOCK" --bpf-pin-dir="$XT_TMP/run/bpf"

# timeout(1)'s child: nsenter, unshare, as-unit and setpriv exec'd into xturnd.
read -r pid _ </proc/"$XT_SERVER_PID"/task/"$XT_SERVER_PID"/children
[ "$(cat /proc/"$pid"/comm 2>/dev/null)" = xturnd ] || die "no xturnd under pid $XT_SERVER_PID"
uid=$(awk '/^Uid:/ { print $2 }' /proc/"$pid"/status)
eff=$(awk '/^CapEff:/ { print $2 }' /proc/"$pid"/status)
declare -A capnum=([CAP_NET_BIND_SERVICE]=10 [CAP_NET_ADMIN]=12 [CAP_PERFMON]=38 [CAP_BPF]=39)
want=0
for c in $caps; do
	[ -n "${capnum[$c]:-}" ] || die "$c: add its number (linux/capability.h) to this test"
	want=$((want | (1 << ${capnum[$c]})))
done
[ "$uid" = "$(id -u nobody)" ] && [ $((16#$eff)) = $want ] &&
	pass "xturnd runs as nobody with exactly $caps (CapEff $eff)" ||
	fail "xturnd: uid $uid, CapEff $eff, want uid $(id -u nobody) and $(printf %x $want)"
xt_xdp_attached "$NS_R" r0 && pass "XDP attached to r0 without root" ||
	fail "no XDP program on r0"
grep -q "fast path: r0: native XDP" "$XT_SERVER_LOG" || fail "no attach line for r0"
grep -q "no lookup device\|fast path: off" "$XT_SERVER_LOG" &&
	fail "permission trouble: $(grep -m1 'no lookup device\|fast path: off' "$XT_SERVER_LOG")"
ip -n "$NS_R" link show xturn0 >/dev/null 2>&1 && pass "lookup device made" ||
	fail "no lookup device xturn0"

xt_spawn "$XT_TMP/peer.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer \
	-L $P4:$PEER_PORT --ports 2 -d 6 --json
peer=$XT_BG_PID
xt_wait_udp "$NS_P" $PEER_PORT 1
xt_wait_udp "$NS_P" $((PEER_PORT + 1)) 1
fwd0=$(xt_xdp_count 0)
ip netns exec "$NS_C" "$XT_BUILD/xturngen" -s $R4C:$XT_PORT -u $USER -w $PASS \
	-p $P4:$PEER_PORT -a 1 -c 2 -r 2000 -d 2 -l 200 --json >"$XT_TMP/gen.json" 2>"$XT_TMP/gen.err" ||
	fail "xturngen client failed"
xt_wait $peer
fwd=$(( $(xt_xdp_count 0) - ${fwd0:-0} ))
got=$(sed -n 's/.*"received":\([0-9]*\).*/\1/p' "$XT_TMP/peer.json")
xt_stat_json
[ "$fwd" -gt 1000 ] && [ "${got:-0}" = "$fwd" ] && [ "$(xt_field c2p_udp_packets)" = 0 ] &&
	pass "relayed through XDP: $fwd forwarded, the peer got $got, the daemon relayed none" ||
	fail "XDP forwarded $fwd, peer got ${got:-?}, daemon c2p $(xt_field c2p_udp_packets)"

stop_server
xt_xdp_attached "$NS_R" r0 && fail "XDP left on r0 after exit" || pass "detached on exit"
[ -z "$(ls -A "$XT_PIN_DIR" 2>/dev/null)" ] && pass "pins removed on exit" ||
	fail "pins left: $(ls "$XT_PIN_DIR")"
ip -n "$NS_R" link show xturn0 >/dev/null 2>&1 && fail "lookup device left" ||
	pass "lookup device removed on exit"
xt_finish
