#!/usr/bin/env bash
# A planned restart loses nothing (issue 13): xturnctl restart (SIGUSR2) hands
# the running daemon's sockets and allocations to a fresh exec of the binary.
#   xdp:    a ChannelData flow of 2000 pps both ways through XDP loses no
#           packet; a client's allocation refreshes and relays Send
#           indications after it, over UDP and over its TCP connection,
#           which passed too; the new program replaced the old in place.
#   no-xdp: the same flow relayed by the daemon loses at most what arrives
#           during the handover itself (reported, with how long it took).
#   failed: when the new process cannot start (its configuration broke
#           meanwhile), the old one serves on and says why.
# Usage: tests/e2e/test_handover.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland PEER_PORT=4000 RATE=2000

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology
ctl() { timeout 10 "$XT_BUILD/xturnctl" --socket "$XT_CTL" "$@"; }
printf 'user = %s:%s\nrelay-threads = 2\n' $USER $PASS >"$XT_TMP/xturn.conf"
# The daemon runs from a copy that each round's "upgrade" replaces with a new
# file (a new inode) before the restart: the new process must run that one.
mkdir -p "$XT_TMP/sbin"
cp "$XT_BUILD/xturnd" "$XT_TMP/sbin/xturnd"
XT_BUILD_ORIG=$XT_BUILD

# round LABEL ARGS...: a server, a probe allocation, a flow, a restart.
round() {
	local label=$1 old new ms sent echoed lost allowed; shift
	XT_BUILD=$XT_TMP/sbin start_server -c "$XT_TMP/xturn.conf" --stats-socket="$XT_SOCK" "$@"
	read -r old _ </proc/"$XT_SERVER_PID"/task/"$XT_SERVER_PID"/children
	xt_spawn "$XT_TMP/peer-$label.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer \
		--echo -L $P4:$PEER_PORT --ports 3 -d 12 --json
	local peer=$XT_BG_PID
	xt_wait_udp "$NS_P" $((PEER_PORT + 2)) 1 || die "xturngen peer does not listen"
	coproc PROBE { ip netns exec "$NS_C" python3 "$(dirname "$0")/turnprobe.py" $R4C \
		$XT_PORT $USER $PASS $P4 $((PEER_PORT + 2)) 2>&1; }
	# The same over TCP, through fifos (bash keeps one coprocess).
	rm -f "$XT_TMP/tin" "$XT_TMP/tout"
	mkfifo "$XT_TMP/tin" "$XT_TMP/tout"
	ip netns exec "$NS_C" python3 "$(dirname "$0")/turnprobe.py" $R4C $XT_PORT $USER $PASS \
		$P4 $((PEER_PORT + 2)) tcp <"$XT_TMP/tin" >"$XT_TMP/tout" 2>&1 &
	local tprobe=$!
	exec 7>"$XT_TMP/tin" 8<"$XT_TMP/tout"
	for c in alloc perm send; do
		out=$(probe $c)
		[[ $out == ok* ]] || die "$label: probe before the restart: $c: $out"
		out=$(tprobe $c)
		[[ $out == ok* ]] || die "$label: TCP probe before the restart: $c: $out"
	done
	xt_spawn "$XT_TMP/gen-$label.json" ip netns exec "$NS_C" "$XT_BUILD/xturngen" \
		-s $R4C:$XT_PORT -u $USER -w $PASS -p $P4:$PEER_PORT -a 1 -c 2 -r $RATE -d 6 \
		-l 100 --json
	local gen=$XT_BG_PID
	sleep 2
	# make install's way: a new file renamed over the old.
	cp "$XT_BUILD_ORIG/xturnd" "$XT_TMP/sbin/xturnd.new"
	mv "$XT_TMP/sbin/xturnd.new" "$XT_TMP/sbin/xturnd"
	out=$(ctl restart) || fail "$label: xturnctl restart: $out"
	for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$old" 2>/dev/null && fail "$label: the old daemon still runs"
	new=$(sed -n 's/.*restart: pid \([0-9]*\) took over after \([0-9]*\) ms.*/\1/p' \
		"$XT_SERVER_LOG")
	ms=$(sed -n 's/.*restart: pid \([0-9]*\) took over after \([0-9]*\) ms.*/\2/p' \
		"$XT_SERVER_LOG")
	[ -n "$new" ] && kill -0 "$new" 2>/dev/null && XT_PIDS+=("$new") ||
		die "$label: no new daemon: $(tail -n 5 "$XT_SERVER_LOG")"
	xt_wait "$XT_SERVER_PID"	# timeout(1), whose child was the old daemon
	pass "$label: pid $new took over from $old in $ms ms"
	[ "$(stat -L -c %i /proc/"$new"/exe)" = "$(stat -c %i "$XT_TMP/sbin/xturnd")" ] &&
		pass "$label: the new process runs the binary installed meanwhile" ||
		fail "$label: the new process runs $(readlink /proc/"$new"/exe), not the new file"
	xt_wait $gen || fail "$label: xturngen exited with an error"
	sent=$(gen_field "$XT_TMP/gen-$label.json" sent)
	echoed=$(gen_field "$XT_TMP/gen-$label.json" echo_received)
	lost=$((sent - echoed))
	# What arrives while the relay threads are held is queued, not lost;
	# allowed: what the handover's time carries, both ways, and 10 more.
	allowed=0
	[ "$label" = no-xdp ] && allowed=$((2 * RATE * ms / 1000 + 10))
	[ "$sent" -gt 8000 ] && [ "$lost" -le "$allowed" ] &&
		pass "$label: $sent sent, $lost lost across the restart (at most $allowed)" ||
		fail "$label: $sent sent, $echoed came back: $lost lost (at most $allowed)"
	out=$(probe refresh)
	[[ $out == "ok lifetime 600" ]] || fail "$label: refresh after the restart: $out"
	out=$(probe send)
	[[ $out == "ok echoed" ]] && pass "$label: the client's allocation refreshes and relays" ||
		fail "$label: send after the restart: $out"
	out=$(tprobe refresh) && [[ $out == "ok lifetime 600" ]] && out=$(tprobe send) &&
		[[ $out == "ok echoed" ]] &&
		pass "$label: the TCP client's connection and allocation passed: it refreshes and relays" ||
		fail "$label: TCP client after the restart: $out"
	exec 7>&- 8<&-
	wait "$tprobe" 2>/dev/null
	eval "exec ${PROBE[1]}>&-"
	wait "$PROBE_PID" 2>/dev/null
	xt_stop "$peer"	# the next round's peer takes its ports
	kill -TERM "$new"
	for _ in $(seq 100); do kill -0 "$new" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$new" 2>/dev/null && fail "$label: the new daemon ignored SIGTERM"
	XT_SERVER_PID=
}
probe() { echo "$1" >&"${PROBE[1]}"; read -r -t 10 line <&"${PROBE[0]}"; echo "$line"; }
tprobe() { echo "$1" >&7; read -r -t 10 line <&8; echo "$line"; }

round xdp
grep -q "in place of the program a stopped xturnd left" "$XT_SERVER_LOG" ||
	fail "xdp: the new program did not replace the old in place"
round no-xdp --no-xdp

# failed: the file the new process reads is broken; the old one goes on.
start_server -c "$XT_TMP/xturn.conf" --stats-socket="$XT_SOCK" --no-xdp
read -r old _ </proc/"$XT_SERVER_PID"/task/"$XT_SERVER_PID"/children
echo "min-port = 70000" >>"$XT_TMP/xturn.conf"
ctl restart >/dev/null
for _ in $(seq 50); do grep -q "restart failed" "$XT_SERVER_LOG" && break; sleep 0.1; done
grep -q "restart failed, serving on: the new process exited 2" "$XT_SERVER_LOG" &&
	pass "failed: the old daemon says why ($(grep -o 'the new process exited [0-9]*' \
		"$XT_SERVER_LOG"))" || fail "failed: $(tail -n 3 "$XT_SERVER_LOG")"
kill -0 "$old" && out=$(ctl status) && [[ $out == "state: running"* ]] &&
	pass "failed: the old daemon still serves (xturnctl status answers)" ||
	fail "failed: the old daemon is gone or mute: $out"
stop_server
xt_finish
