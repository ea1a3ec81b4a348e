# Sourced by the loopback-only e2e tests (no namespaces): a temp dir, the
# background processes to stop on exit, and fail() that shows their logs.
# Usage: . "$(dirname "$0")/loopback.sh"; lo_init NAME
pids=()
lo_init() {
	tmp=$(mktemp -d "/tmp/$1.XXXXXX")
	trap lo_cleanup EXIT
}
lo_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log "$tmp"/*.err "$tmp"/*.json; do
		[ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; }
	done
	exit 1
}
