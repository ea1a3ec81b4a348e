#!/usr/bin/env bash
# Administration through xturnctl, with a flow through XDP:
#   1. sessions --json lists each live allocation with the fields tools rely
#      on and its XDP traffic so far; the table has a row each; status names
#      the fast path per interface;
#   2. kill ID ends that allocation (its bindings leave the maps, the
#      accounting record says killed and carries its XDP counts); kill --user
#      of nobody kills nothing; another user than root is refused;
#   3. drain --timeout: the daemon refuses new allocations, ends what is left
#      at the timeout (accounting: drained) and exits 0;
#   4. SIGUSR1 drains too: with nothing left, the daemon exits 0 at once.
#   5. The Grafana dashboard (tools/grafana/xturn.json) queries only metrics
#      and labels the daemon's /metrics has, with the fast path on.
# Usage: tests/e2e/test_admin.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland
ALLOCS=2 CHANS=2 RATE=1000 PEER_PORT=4000

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology
ACCT=$XT_TMP/acct.json
ctl() { timeout 10 "$XT_BUILD/xturnctl" --socket "$XT_CTL" "$@"; }
# json_check FILE PYTHON-EXPR-ON-d: prints the expression's value, or fails.
json_eval() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# expect_exit TENTHS WHAT: xturnd exits 0 within TENTHS tenths of a second.
expect_exit() {
	for _ in $(seq "$1"); do kill -0 "$XT_SERVER_PID" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$XT_SERVER_PID" 2>/dev/null; then
		fail "$2: xturnd still runs after $(($1 / 10)) s"
		stop_server
	else
		xt_wait "$XT_SERVER_PID" && pass "$2: xturnd exited 0" || fail "$2: exit $?"
		XT_SERVER_PID=
	fi
}

start_server --user=$USER:$PASS --user=bob:builder --stats-socket="$XT_SOCK" \
	--accounting-log="$ACCT" --prometheus --prometheus-port=9641
xt_spawn "$XT_TMP/peer.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer \
	-L $P4:$PEER_PORT --ports $CHANS -d 14 --json
xt_wait_udp "$NS_P" $((PEER_PORT + CHANS - 1)) 1 || die "xturngen peer does not listen"
xt_spawn "$XT_TMP/gen.json" ip netns exec "$NS_C" "$XT_BUILD/xturngen" -s $R4C:$XT_PORT \
	-u $USER -w $PASS -p $P4:$PEER_PORT -a $ALLOCS -c $CHANS -r $RATE -d 10 -l 100 --json
GEN=$XT_BG_PID
sleep 2

# 1
ctl sessions --json >"$XT_TMP/sessions.json" || die "xturnctl sessions --json failed"
n=$(json_eval "$XT_TMP/sessions.json" 'len(d)')
[ "$n" = $ALLOCS ] && pass "sessions --json: $n allocations" || fail "sessions --json: $n, want $ALLOCS"
out=$(json_eval "$XT_TMP/sessions.json" '" ".join(sorted({"id","user","client","transport",
	"relays","age_s","permissions","channels","c2p","p2c"} - set(d[0])))')
[ -z "$out" ] && pass "sessions --json: every field" || fail "sessions --json lacks: $out"
out=$(json_eval "$XT_TMP/sessions.json" 'all(s["user"] == "alice" and s["transport"] == "udp"
	and s["channels"] == '$CHANS' and s["c2p"]["xdp_packets"] > 100 and
	s["c2p"]["xdp_packets"] <= s["c2p"]["packets"] for s in d)')
[ "$out" = True ] && pass "sessions --json: $CHANS channels each, XDP traffic counted live" ||
	fail "sessions --json: $(cat "$XT_TMP/sessions.json")"
rows=$(ctl sessions | grep -c ' alice ')
[ "$rows" = $ALLOCS ] && pass "sessions: a row per allocation" || fail "sessions: $rows rows"
status=$(ctl status)
grep -q "^  r0: native XDP" <<<"$status" && grep -q "^allocations: $ALLOCS$" <<<"$status" &&
	pass "status: r0 native XDP, $ALLOCS allocations" || fail "status: $status"

# 5 (while the flow runs: every family has its samples)
ip netns exec "$NS_R" curl -s http://127.0.0.1:9641/metrics >"$XT_TMP/metrics.txt" ||
	fail "GET /metrics"
out=$(python3 - "$(dirname "$0")/../../tools/grafana/xturn.json" "$XT_TMP/metrics.txt" 2>&1 <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
labels = {}	# sample name -> label names seen
for line in open(sys.argv[2]):
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ', line)
    if m and not line.startswith("#"):
        names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
        labels.setdefault(m.group(1), set()).update(names)
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
bad = []
for e in exprs:
    used = re.findall(r'\b(xturn_[a-z_]+|process_start_time_seconds)\b', e)
    for n in used:
        if n not in labels:
            bad.append("%s: no %s in /metrics" % (e, n))
    for group in re.findall(r'by \(([^)]*)\)', e):
        for l in (x.strip() for x in group.split(",")):
            if not any(l in labels.get(n, ()) for n in used):
                bad.append("%s: no label %s on %s" % (e, l, used))
assert not bad, "; ".join(bad)
print("%d panels, %d queries, every metric and label in /metrics" % (len(dash["panels"]), len(exprs)))
PY
) && pass "Grafana dashboard: $out" || fail "Grafana dashboard: $out"

# 2
id=$(json_eval "$XT_TMP/sessions.json" 'd[0]["id"]')
out=$(ctl kill "$id") && [ "$out" = "killed 1 allocation" ] && pass "kill $id" ||
	fail "kill $id: $out"
sleep 0.5
left=$(ctl sessions --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$left" = $((ALLOCS - 1)) ] && [ "$(xt_map_entries xt_c2p)" = $(((ALLOCS - 1) * CHANS)) ] &&
	pass "killed: $left allocation left, its bindings gone from the maps" ||
	fail "after kill: $left allocations, $(xt_map_entries xt_c2p) c2p entries"
rec=$(grep "\"$id\"" "$ACCT")
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["reason"] == "killed" and r["c2p"]["xdp_packets"] > 100, r' "$rec" &&
	pass "accounting: $id killed, with its XDP packets" || fail "accounting record: $rec"
out=$(ctl kill --user nobody-at-all) && [ "$out" = "killed 0 allocations" ] &&
	pass "kill --user of nobody: none" || fail "kill --user nobody-at-all: $out"
# As nobody: the file's mode refuses (the directory is open to all); with
# the mode loosened, the daemon still refuses by the peer's credentials.
chmod 0755 "$XT_TMP"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$XT_BUILD/xturnctl" \
	--socket "$XT_CTL" status 2>&1; }
rc=0
out=$(as_nobody) || rc=$?
[ $rc = 1 ] && [[ $out == *"Permission denied (root or the xturn group only)" ]] &&
	pass "nobody is refused by the socket's mode" || fail "as nobody: exit $rc: $out"
chmod 0666 "$XT_CTL"
rc=0
out=$(as_nobody) || rc=$?
[ $rc = 1 ] && [ "$out" = "xturnctl: permission denied" ] &&
	pass "nobody is refused by its credentials" || fail "as nobody, mode 0666: exit $rc: $out"
chmod 0700 "$XT_TMP"
rc=0
ctl kill 0000000000000000 >/dev/null 2>&1 || rc=$?
[ $rc = 1 ] && pass "kill of an unknown id: exit 1" || fail "kill of an unknown id: exit $rc"

# 3: the second allocation is still relaying; the timeout ends it.
out=$(ctl drain --timeout 2) && [[ $out == "draining: 1 allocations left, 2s"* ]] &&
	pass "drain: $out" || fail "drain: $out"
expect_exit 60 "drained"
grep -q '"reason":"drained"' "$ACCT" && pass "accounting: the last allocation ended drained" ||
	fail "no drained record: $(tail -n 2 "$ACCT")"
grep -q "drain: timeout, ending the 1 allocations left" "$XT_SERVER_LOG" ||
	fail "no drain timeout line in the log"
xt_wait $GEN

# 4
start_server --user=$USER:$PASS --stats-socket="$XT_SOCK"
# XT_SERVER_PID is timeout(1)'s; the signal is for xturnd, its child.
read -r pid _ </proc/"$XT_SERVER_PID"/task/"$XT_SERVER_PID"/children
kill -USR1 "$pid"
expect_exit 40 "SIGUSR1, no allocation left"
xt_finish
