#!/usr/bin/env bash
# make fresh-check: the README's promise, tried for real. In a minimal Debian
# 12 (debootstrap --variant=minbase) that has nothing but `make`:
#   1. `make run` with only the build's packages (make deps-build, its first
#      step, runs first with the network; make run then in a network
#      namespace of its own, so its 0.0.0.0:3478 and XDP never meet the
#      host's): it builds and xturnd answers a STUN Binding request;
#   2. `make test` installs the rest and passes, package audit included.
# The base system is cached in CACHE_DIR (one debootstrap, ~30 s); every run
# unpacks a new copy, with the working tree (git's files, committed or not).
# Usage: tests/fresh-check.sh [CACHE_DIR]   (as root; FRESH_MIRROR=URL)
set -euo pipefail
cache=${1:-/var/tmp/xturn-fresh}
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
repo=$(cd "$(dirname "$0")/.." && pwd)
base=$cache/bookworm-minbase.tar
ns=xt-fresh-$$
root= log=
die() { echo "fresh-check: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts)"
for t in debootstrap ip git; do
	command -v "$t" >/dev/null || die "missing tool: $t"
done

cleanup() {
	local rc=$?
	set +e
	[ -n "${run_pid:-}" ] && kill -TERM -- -"$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	if [ -n "$root" ]; then
		# deepest mounts first; rslave above keeps the host's own untouched
		findmnt -rn -o TARGET | grep -E "^$root(/|\$)" | sort -r | xargs -r -n1 umount -l
		rm -rf --one-file-system -- "$root"
	fi
	[ $rc = 0 ] || echo "fresh-check: FAILED (log: $log)"
	exit $rc
}
trap cleanup EXIT

mkdir -p "$cache"
if [ ! -s "$base" ]; then
	echo "fresh-check: debootstrap --variant=minbase bookworm (cached in $base)"
	tmp=$(mktemp -d "$cache/debootstrap.XXXXXX")
	debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$cache/debootstrap.log"; rm -rf "$tmp"; die "debootstrap failed"; }
	tar -C "$tmp" -cf "$base.part" . && mv "$base.part" "$base"
	rm -rf --one-file-system -- "$tmp"
fi

root=$(mktemp -d "$cache/root.XXXXXX")
log=$cache/fresh-check.log
: >"$log"
tar -C "$root" -xf "$base"
# The tarball's "." is the 0700 of the mktemp it was made in: the tests that
# run as nobody must traverse /.
chmod 755 "$root"
# As a Debian installer leaves it: updates and security too.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/src/xturn"
git -C "$repo" ls-files -z --cached --others --exclude-standard |
	(cd "$repo" && tar --null -T - -cf -) | tar -C "$root/src/xturn" -xf -

# The root a mount point of its own: `ip netns` and the tests' unshare -m
# make / rslave, which fails (EINVAL) on a directory that is not one.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
# A bpffs of its own: the chroot's pins never meet the host's.
mount -t bpf bpf "$root/sys/fs/bpf"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
mount -t tmpfs tmpfs "$root/run"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	TERM=dumb LANG=C.UTF-8 bash -c "$1"; }

echo "fresh-check: apt-get install make" | tee -a "$log"
in_root 'apt-get update -qq && apt-get install -y -qq --no-install-recommends make' \
	>>"$log" 2>&1 || die "apt-get install make failed"

echo "fresh-check: make deps-build" | tee -a "$log"
in_root 'cd /src/xturn && make deps-build' >>"$log" 2>&1 || die "make deps-build failed"
echo "fresh-check: make run (own network namespace)" | tee -a "$log"
ip netns add "$ns"
ip -n "$ns" link set lo up
setsid nsenter --net=/run/netns/"$ns" chroot "$root" /usr/bin/env -i \
	PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
	bash -c 'cd /src/xturn && exec make run' >"$cache/make-run.log" 2>&1 </dev/null &
run_pid=$!
for _ in $(seq 900); do	# up to 15 min: installs and builds first
	grep -q 'Ctrl-C stops' "$cache/make-run.log" && break
	kill -0 "$run_pid" 2>/dev/null || break
	sleep 1
done
cat "$cache/make-run.log" >>"$log"
grep -q 'Ctrl-C stops' "$cache/make-run.log" ||
	{ tail -n 30 "$cache/make-run.log"; die "make run did not come up"; }
# A STUN Binding request (RFC 8489: type 0x0001, length 0, magic cookie,
# transaction id) over bash's /dev/udp; the answer must be a Binding success
# (0x0101) with our transaction id.
answer=$(nsenter --net=/run/netns/"$ns" chroot "$root" bash -c '
	exec 3<>/dev/udp/127.0.0.1/3478
	printf "\x00\x01\x00\x00\x21\x12\xa4\x42xturnfresh!!" >&3
	timeout 3 head -c 20 <&3 | od -An -tx1 | tr -d " \n"') || true
[ "${answer:0:4}" = 0101 ] && [ "${answer:16:24}" = "$(printf 'xturnfresh!!' | od -An -tx1 | tr -d ' \n')" ] ||
	die "make run: no STUN Binding success on 127.0.0.1:3478 (got '${answer}')"
echo "fresh-check: make run answers STUN Binding" | tee -a "$log"
kill -TERM -- -"$run_pid" 2>/dev/null
wait "$run_pid" 2>/dev/null || true
run_pid=

echo "fresh-check: make test (log: $log)" | tee -a "$log"
rc=0
in_root 'cd /src/xturn && make test' >>"$log" 2>&1 || rc=$?
grep -E '^  (PASS|FAIL)|^ +\||passed,' "$log" | tail -n 60
[ $rc = 0 ] || die "make test failed in the fresh chroot (exit $rc)"
echo "fresh-check: PASS in ${SECONDS}s (log: $log)"
