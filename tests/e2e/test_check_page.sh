#!/usr/bin/env bash
# The browser check (issue 14) in a real browser: Debian's headless Chromium
# opens xturnd's check page from the client's namespace; the page fetches
# its own credentials, gathers candidates for every transport the server
# offers and makes a relay-only call through it. With XDP and with no-xdp:
# the title becomes "xturn check: ok", the result shows a relay candidate for
# UDP and TCP (and TLS, with a test certificate), and a call with its round
# trips and throughput. A screenshot of the finished page is kept for the
# README (XT_SCREENSHOT=FILE).
# Usage: tests/e2e/test_check_page.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland WEB_PORT=8080

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology

round() {
	local label=$1 out; shift
	start_server --user=$USER:$PASS --stats-socket="$XT_SOCK" --web-ip=$R4C \
		--web-port=$WEB_PORT "$@"
	# Chromium keeps files under $HOME (crash reports, its NSS database):
	# the test's own, never the host user's.
	mkdir -p "$XT_TMP/home"
	if out=$(HOME=$XT_TMP/home XDG_CONFIG_HOME=$XT_TMP/home/.config ip netns exec "$NS_C" \
		timeout 120 python3 "$(dirname "$0")/checkpage.py" \
		"http://$R4C:$WEB_PORT" "$XT_TMP/chrome-$label" "$XT_TMP/check-$label.png" 2>&1); then
		pass "$label: the page says: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["title"])' "$out")"
	else
		fail "$label: the check did not pass: $(tail -c 1500 <<<"$out")"
	fi
	python3 - "$out" "$label" <<'PY' && pass "$label: relay candidates over UDP, TCP and TLS, a relayed call" || fail "$label: result: $out"
import json, sys
r = json.loads(sys.argv[1].splitlines()[-1])["result"]
by = {"tls" if g["url"].startswith("turns:") else g["url"].split("transport=")[-1]: g
      for g in r["gather"]}
assert by["udp"]["relay"] and by["tcp"]["relay"] and by["tls"]["relay"], by
c = r["call"]
assert c and c["rtt_p50_ms"] > 0 and c["throughput_mbit_s"] > 0, c
print(sys.argv[2], "udp", by["udp"]["relay"], "tcp", by["tcp"]["relay"], "tls",
      by["tls"]["relay"], "rtt p50", c["rtt_p50_ms"],
      "ms,", c["throughput_mbit_s"], "Mbit/s", file=sys.stderr)
PY
	stop_server
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 1 -nodes \
	-subj "/CN=$R4C" -addext "subjectAltName=IP:$R4C" -keyout "$XT_TMP/key.pem" \
	-out "$XT_TMP/cert.pem" 2>/dev/null || die "openssl: no test certificate"
# The page and its credentials, as curl sees them: nothing loaded from
# elsewhere; credentials shaped for RTCIceServer; a burst of 6 a source, then
# 429.
start_server --user=$USER:$PASS --stats-socket="$XT_SOCK" --web-ip=$R4C --web-port=$WEB_PORT \
	--no-xdp
page=$(ip netns exec "$NS_C" curl -s "http://$R4C:$WEB_PORT/")
[[ $page == *"<title>xturn check</title>"* ]] && ! grep -qE '(src|href)="?(https?:)?//' <<<"$page" &&
	pass "the page: self-contained ($(wc -c <<<"$page") bytes)" || fail "the page: $(head -c 300 <<<"$page")"
creds=$(ip netns exec "$NS_C" curl -s "http://$R4C:$WEB_PORT/check/credentials")
python3 -c 'import json,sys; c=json.loads(sys.argv[1]); assert c["urls"][0].startswith("turn:") and ":xturn-check-" in c["username"] and c["credential"], c' "$creds" &&
	pass "credentials: $creds" || fail "credentials: $creds"
codes=$(for _ in $(seq 8); do ip netns exec "$NS_C" curl -s -o /dev/null -w '%{http_code} ' \
	"http://$R4C:$WEB_PORT/check/credentials"; done)
[[ $codes == *429* ]] && pass "credentials rate-limited per source: $codes" ||
	fail "credentials never refused: $codes"
stop_server

round xdp --cert="$XT_TMP/cert.pem" --pkey="$XT_TMP/key.pem"
round no-xdp --no-xdp --cert="$XT_TMP/cert.pem" --pkey="$XT_TMP/key.pem"
[ -n "${XT_SCREENSHOT:-}" ] && cp "$XT_TMP/check-xdp.png" "$XT_SCREENSHOT"
xt_finish
