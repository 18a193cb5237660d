#!/usr/bin/env bash
# Runs runc's own integration suite (tests/integration/*.bats of runc v1.5.1,
# taken from the Go module proxy) against berth and against runc 1.5.1 built
# from the same module, on this host, and lists the tests that fail only with
# berth.
#
#   sudo bash conformance/runc-bats.sh [FILE.bats ...]
#
# With no files it runs the ones where berth used to differ from runc (issue
# 11, item 7) and their neighbours: DEFAULT_FILES below.
#
# Exit status: 0 when berth fails no test that runc passes, apart from the
# differences the README lists (KNOWN below); 1 when it does; 2 when the
# harness itself failed (build or set-up).
#
# Environment: BERTH_RUNC_BATS_WORK (scratch dir, default
# /var/tmp/berth-runc-bats), BERTH_RUNC_BATS_NOBUILD=1 (use bin/berth and
# bundles/out as they are), BERTH_RUNC_BATS_TIMEOUT (seconds per runtime,
# default 2400).
#
# Notes:
# - The suite downloads its busybox and Debian images from GitHub; this host
#   has no network beyond the Go module proxy, so the busybox image is made
#   from berth's own busybox bundle (Debian's busybox-static), and the Debian
#   image is the same file: the few tests that need Debian fail alike for
#   both runtimes.
# - berth runs as a copy named runc: runc's fd-leak check allows the
#   runtime's sealed copy of itself only as "/runc" (libcontainer names its
#   overlayfs copy after the binary's file name).
# - bats runs under script(1), on a pseudo-terminal: the suite's default
#   config has process.terminal true, and a foreground `run` relays the
#   caller's terminal.
set -euo pipefail
export LC_ALL=C

RUNC_MODULE=github.com/opencontainers/runc
RUNC_VERSION=v1.5.1
DEFAULT_FILES="kill.bats list.bats update.bats exec.bats create.bats run.bats pidfd-socket.bats
capabilities.bats hooks.bats cgroups.bats delete.bats start_hello.bats start_detached.bats
pause.bats ps.bats events.bats state.bats"
# Tests berth fails on purpose, where it follows the runtime-spec (README,
# "Where berth differs from runc").
KNOWN=(
	"runc run with unknown capability"
)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=${BERTH_RUNC_BATS_WORK:-/var/tmp/berth-runc-bats}
TIMEOUT=${BERTH_RUNC_BATS_TIMEOUT:-2400}

log() { printf '== %s\n' "$*" >&2; }
die() {
	printf 'runc-bats.sh: %s\n' "$*" >&2
	exit 2
}

[ "$(id -u)" -eq 0 ] || die "run as root: the suite runs real containers"
# shellcheck disable=SC2086 # one line, split on whitespace
files=$(printf '%s ' ${*:-$DEFAULT_FILES})

need=()
for t in bats:bats gawk:gawk jq:jq lsblk:util-linux script:bsdutils; do
	command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed"
fi

if [ "${BERTH_RUNC_BATS_NOBUILD:-}" != 1 ]; then
	log "building berth and its bundles"
	make -C "$ROOT" build bundles >/dev/null || die "make build bundles failed"
fi
[ -x "$ROOT/bin/berth" ] || die "$ROOT/bin/berth is missing"
[ -d "$ROOT/bundles/out/busybox/rootfs" ] || die "$ROOT/bundles/out/busybox/rootfs is missing"

log "runc $RUNC_VERSION from the Go module proxy"
moddir=$(GOFLAGS=-mod=mod go mod download -json "$RUNC_MODULE@$RUNC_VERSION" | jq -r .Dir) ||
	die "go mod download $RUNC_MODULE@$RUNC_VERSION failed"
src=$WORK/runc-$RUNC_VERSION
rm -rf "$src"
mkdir -p "$WORK"
cp -a "$moddir" "$src"
# The module cache keeps files read-only and without their executable bits.
chmod -R u+w "$src"
find "$src" -name '*.sh' -exec chmod +x {} +
(
	cd "$src"
	export GOFLAGS=-mod=mod GOTOOLCHAIN=local
	go build -trimpath -tags seccomp -o "$WORK/bin-runc/runc" . || exit 1
	mkdir -p tests/cmd/_bin
	for b in recvtty pidfd-kill remap-rootfs fs-idmap key_label sd-helper seccompagent; do
		go build -trimpath -tags seccomp -o tests/cmd/_bin/ "./tests/cmd/$b" || exit 1
	done
) || die "building runc $RUNC_VERSION or its test helpers failed"

arch=$(go env GOARCH)
testdata=$src/tests/integration/testdata
tar -C "$ROOT/bundles/out/busybox/rootfs" -cJf "$testdata/busybox-$arch.tar.xz" .
cp "$testdata/busybox-$arch.tar.xz" "$testdata/debian-$arch.tar.xz"

# list.bats runs `list --root /non-existent-dir/state`; runc before 1.2
# made --root directories, even for list.
[ ! -e /non-existent-dir ] ||
	log "warning: /non-existent-dir exists (left by an old runc?): \"list with non-existent root fails\" cannot fail"

mkdir -p "$WORK/bin-berth"
cp "$ROOT/bin/berth" "$WORK/bin-berth/runc"

# run LABEL BINARY: the suite's files with RUNC=BINARY, TAP in $WORK/LABEL.tap.
run() {
	local label=$1 bin=$2
	log "$label: $("$bin" --version | head -1)"
	(
		cd "$src/tests/integration"
		# shellcheck disable=SC2086 # the file list is split on purpose
		RUNC=$bin timeout -k 30 "$TIMEOUT" script -qefc "bats -T $files >'$WORK/$label.tap' 2>&1" /dev/null </dev/null
	) || true
	remove_test_cgroups
}

# remove_test_cgroups removes the suite's cgroup directories that its own
# teardown leaves on a hybrid host (the v2 pod_* ones of update.bats' "pod
# cgroup" test): only empty ones, deepest first.
remove_test_cgroups() {
	find /sys/fs/cgroup -depth -type d -path '*/runc-cgroups-integration-test*' -exec rmdir {} \; 2>/dev/null || true
	local left
	left=$(find /sys/fs/cgroup -maxdepth 4 -type d -name 'runc-cgroups-integration-test*')
	[ -z "$left" ] || die "cgroup directories of the suite are left (not empty): $left"
}

# results TAP: one line per test, "ok|skip|fail<TAB>name".
results() {
	sed -nE 's/^(not ok|ok) [0-9]+ (.*)$/\1\t\2/p' "$1" | while IFS=$'\t' read -r res name; do
		case $res:$name in
		ok:*'# skip'*) res=skip ;;
		ok:*) ;;
		*) res=fail ;;
		esac
		name=${name%% # skip*}
		name=${name% in [0-9]*ms}
		printf '%s\t%s\n' "$res" "$name"
	done
}

run berth "$WORK/bin-berth/runc"
run runc "$WORK/bin-runc/runc"

printf '\n%-8s %6s %6s %6s\n' runtime passed skipped failed
for label in runc berth; do
	results "$WORK/$label.tap" >"$WORK/$label.results"
	printf '%-8s %6d %6d %6d\n' "$label" \
		"$(grep -c '^ok' "$WORK/$label.results" || true)" \
		"$(grep -c '^skip' "$WORK/$label.results" || true)" \
		"$(grep -c '^fail' "$WORK/$label.results" || true)"
done
for label in runc berth; do
	grep -q '^ok' "$WORK/$label.results" || die "$label passed no test: the suite did not run (see $WORK/$label.tap)"
done

status=0
printf '\nfailing only with berth:\n'
while IFS=$'\t' read -r _ name; do
	grep -qxF "ok	$name" "$WORK/runc.results" || continue
	known=""
	for k in "${KNOWN[@]}"; do
		[ "$k" = "$name" ] && known=" (known: berth follows the runtime-spec)"
	done
	printf '  %s%s\n' "$name" "$known"
	[ -n "$known" ] || status=1
done < <(grep '^fail' "$WORK/berth.results")
printf '\nTAP: %s/{berth,runc}.tap\n' "$WORK"
exit $status
