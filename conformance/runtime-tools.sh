#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite (validation/*/*.t) against berth
# and against Debian's runc, side by side, and prints one table.
#
#   sudo bash conformance/runtime-tools.sh [-t REGEX] [-o DIR] [-m FILE.md]
#
#   -t REGEX   run only the test files whose name matches REGEX (grep -E)
#   -o DIR     keep the raw results (DIR/{berth,runc}/T.{tap,err,rc,secs}) there
#   -m FILE    also write the table as Markdown to FILE
#
# Exit status: 0 when berth passes every test point runc passes and every
# point of the tests where runc deviates from the runtime-spec (delete,
# hooks_stdin); 1 when it does not; 2 when the harness itself failed (build,
# set-up, or it could not clean up after the suite).
#
# Environment: RUNC (default /usr/sbin/runc), BERTH_CONFORMANCE_WORK (build
# and scratch dir, default /var/tmp/berth-conformance), BERTH_CONFORMANCE_TIMEOUT
# (seconds per .t file, default 60), BERTH_CONFORMANCE_BUDGET (seconds per
# runtime, default 420; files not started by then count as failed),
# RT_VERSION (another runtime-tools version, informational).
#
# The suite runs as root, in a private mount namespace (unshare -m
# --propagation private), one runtime after the other (the cgroup tests use
# fixed cgroup paths). Afterwards the script removes what the suite leaves
# behind (containers, their processes and state dirs, the cgroup dirs it
# created, bundles) and checks that the host is as it was.
set -euo pipefail
export LC_ALL=C

RT_MODULE=github.com/opencontainers/runtime-tools
PINNED=v0.9.0 # newest tag on the Go module proxy (2019-03-06)
# RT_VERSION=<pseudo-version> runs a later commit instead (informational; see
# README.md): it then builds with that commit's own go.mod.
RT_VERSION=${RT_VERSION:-$PINNED}
MUST_PASS=delete,hooks_stdin
# hooks_stdin's pid check compares the pid a hook saw with `state` read after
# `start` returned, when its process (`true`) has exited and the state has no
# pid any more: no runtime passes it (see README.md). Only that error is
# excused; the status values must be right.
EXCUSE='hooks_stdin=^wrong container process ID'

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=${BERTH_CONFORMANCE_WORK:-/var/tmp/berth-conformance}
TEST_TIMEOUT=${BERTH_CONFORMANCE_TIMEOUT:-60} # per .t file (runc's slowest takes ~14s)
BUDGET=${BERTH_CONFORMANCE_BUDGET:-420}       # per runtime (~70-240 s each here): files not started by then are not run
RUNC=${RUNC:-/usr/sbin/runc}
UUID_RE='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

log() { printf '== %s\n' "$*" >&2; }
die() {
	printf 'runtime-tools.sh: %s\n' "$*" >&2
	exit 2
}

# ---------------------------------------------------------------------------
# Inside the private mount namespace: run every .t file with one runtime.
#   runtime-tools.sh __run RUNTIME RTDIR OUTDIR SCRATCH TESTS...
if [ "${1:-}" = __run ]; then
	shift
	rt=$1 rtdir=$2 out=$3 scratch=$4
	shift 4
	cd "$rtdir"
	t0=$(date +%s)
	for n in "$@"; do
		if [ $(($(date +%s) - t0)) -ge "$BUDGET" ]; then
			: >"$out/$n.tap"
			echo "not run: the ${BUDGET}s budget for this runtime was used up" >"$out/$n.err"
			echo 125 >"$out/$n.rc"
			continue
		fi
		start=$(date +%s.%N)
		set +e
		TMPDIR=$scratch RUNTIME=$rt timeout -k 10 "$TEST_TIMEOUT" \
			"./validation/$n/$n.t" >"$out/$n.tap" 2>"$out/$n.err" </dev/null
		echo $? >"$out/$n.rc"
		set -e
		end=$(date +%s.%N)
		awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' >"$out/$n.secs"
		printf '   %-32s exit %s, %ss\n' "$n" "$(cat "$out/$n.rc")" "$(cat "$out/$n.secs")" >&2
	done
	exit 0
fi

# ---------------------------------------------------------------------------
only='' keep='' markdown=''
while getopts 't:o:m:h' opt; do
	case $opt in
	t) only=$OPTARG ;;
	o) keep=$OPTARG ;;
	m) markdown=$OPTARG ;;
	h)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0
		;;
	*) exit 2 ;;
	esac
done

[ "$(id -u)" = 0 ] || die "must run as root (containers, cgroups, mount namespaces)"

# --- packages --------------------------------------------------------------
# make/gcc/libseccomp-dev/pkg-config: build berth (cgo, seccomp); runc: the
# reference; tar/gzip: the suite unpacks its rootfs; util-linux: unshare;
# coreutils: timeout; procps: ps for the leftover check.
need=()
for p in make gcc libc6-dev pkg-config libseccomp-dev runc tar gzip util-linux coreutils procps ca-certificates; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed"
fi
[ -x "$RUNC" ] || die "no runc at $RUNC"

# --- Go ----------------------------------------------------------------------
go_ok() {
	local g v
	for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /root/.cache/berth-go/go/bin/go; do
		[ -n "$g" ] && [ -x "$g" ] || continue
		v=$("$g" env GOVERSION 2>/dev/null | sed 's/^go//') || continue
		if [ "$(printf '1.25\n%s\n' "$v" | sort -V | head -n1)" = 1.25 ]; then
			echo "$g"
			return 0
		fi
	done
	return 1
}
if ! GO=$(go_ok); then
	log "no Go >= 1.25: running scripts/setup.sh"
	bash "$ROOT/scripts/setup.sh" >/dev/null
	GO=$(go_ok) || die "no usable Go toolchain"
fi
export PATH="$(dirname "$GO"):$PATH"
export GOTOOLCHAIN=local GOWORK=off GO111MODULE=on GOFLAGS=-buildvcs=false

# --- berth -------------------------------------------------------------------
log "building berth (make -C $ROOT build)"
make -s -C "$ROOT" build >&2 || die "make build failed"
BERTH=$ROOT/bin/berth
[ -x "$BERTH" ] || die "no $BERTH after make build"

# --- runtime-tools -----------------------------------------------------------
# The module zip has no vendor/ and no go.mod (v0.9.0 predates modules and
# used Godeps): the pinned go.mod/go.sum beside this script choose, per
# dependency, the version closest to Godeps.json that the proxy serves and
# that builds (see README.md).
mkdir -p "$WORK"
if [ "$RT_VERSION" = "$PINNED" ]; then
	stamp=$(cat "$HERE/runtime-tools.go.mod" "$HERE/runtime-tools.go.sum" | sha256sum | cut -c1-16)
else
	stamp=own-go.mod
fi
RTDIR=$WORK/runtime-tools-$RT_VERSION-$stamp-$("$GO" env GOVERSION)
if [ ! -f "$RTDIR/.built" ]; then
	log "building runtime-tools $RT_VERSION validation executables in $RTDIR"
	modjson=$(cd "$WORK" && "$GO" mod download -json "$RT_MODULE@$RT_VERSION") || die "go mod download $RT_MODULE@$RT_VERSION failed"
	src=$(printf '%s\n' "$modjson" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[ -d "$src" ] || die "go mod download gave no source dir: $modjson"
	rm -rf "$RTDIR" "$RTDIR.tmp"
	cp -r "$src" "$RTDIR.tmp"
	chmod -R u+w "$RTDIR.tmp"
	rm -rf "$RTDIR.tmp/vendor"
	if [ "$RT_VERSION" = "$PINNED" ]; then
		cp "$HERE/runtime-tools.go.mod" "$RTDIR.tmp/go.mod"
		cp "$HERE/runtime-tools.go.sum" "$RTDIR.tmp/go.sum"
	fi
	[ -f "$RTDIR.tmp/go.mod" ] || die "$RT_MODULE@$RT_VERSION has no go.mod: pin it like $PINNED"
	(cd "$RTDIR.tmp" && "$GO" mod tidy) || die "go mod tidy failed"
	if [ "$RT_VERSION" = "$PINNED" ] && ! cmp -s "$HERE/runtime-tools.go.mod" "$RTDIR.tmp/go.mod"; then
		log "note: go mod tidy changed the pinned go.mod:"
		diff "$HERE/runtime-tools.go.mod" "$RTDIR.tmp/go.mod" >&2 || true
	fi
	make -s -C "$RTDIR.tmp" -j"$(nproc)" runtimetest validation-executables >&2 || die "building runtime-tools failed"
	mv "$RTDIR.tmp" "$RTDIR"
	touch "$RTDIR/.built"
fi

mapfile -t TESTS < <(cd "$RTDIR" && for t in validation/*/*.t; do basename "$t" .t; done | { if [ -n "$only" ]; then grep -E -- "$only" || true; else cat; fi; })
[ ${#TESTS[@]} -gt 0 ] || die "no validation/*/*.t matches '${only}'"

# --- the TAP reader ------------------------------------------------------------
# Built in a module of its own (standard library only), outside berth's.
TAPSUM=$WORK/tapsum
rm -rf "$WORK/tapsum-src" && mkdir -p "$WORK/tapsum-src"
cp "$HERE/tapsum/main.go" "$WORK/tapsum-src/"
printf 'module tapsum\n\ngo 1.21\n' >"$WORK/tapsum-src/go.mod"
(cd "$WORK/tapsum-src" && "$GO" build -o "$TAPSUM" .) || die "building conformance/tapsum failed"

# --- before ------------------------------------------------------------------
RUN=$(mktemp -d "$WORK/run.XXXXXX")
SCRATCH=$RUN/tmp # TMPDIR of the suite: every bundle it makes is under here
mkdir -p "$SCRATCH" "$RUN/berth" "$RUN/runc"
# Like /tmp: the user-namespace tests (linux_uid_mappings, linux_ns_nopath)
# map the container's root to uid 1000, which must be able to reach the bundle.
chmod 755 "$WORK" "$RUN"
chmod 1777 "$SCRATCH"
trap 'rm -rf "$RUN"' EXIT

cgroup_dirs() { find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort; }
mount_points() { awk '{ print $5 }' /proc/self/mountinfo | sort; }
state_roots="/run/berth /run/runc"
# A state root that does not exist yet (no runc run since boot) lists nothing;
# it must not end the function with a failure under set -e and pipefail.
list_states() { for r in $state_roots; do if [ -d "$r" ]; then ls -1 "$r" | sed "s|^|$r/|"; fi; done | sort; }

cgroup_dirs >"$RUN/cgroups.before"
mount_points >"$RUN/mounts.before"
list_states >"$RUN/states.before"
mounts_before=$(grep -c '' /proc/self/mountinfo)

# Record the ids of the containers the suite makes (runtime-tools names them
# with random UUIDs), so that only their leftovers are removed: other work on
# this host may create cgroups and containers at the same time.
(
	while :; do
		for r in $state_roots; do [ -d "$r" ] && ls -1 "$r"; done 2>/dev/null | grep -E "^$UUID_RE\$" || true
		sleep 0.2
	done
) >"$RUN/ids.seen" &
sampler=$!

# --- run ---------------------------------------------------------------------
run_suite() { # NAME RUNTIME
	log "running ${#TESTS[@]} test files with $1 ($2), ${TEST_TIMEOUT}s each, ${BUDGET}s in all, in a private mount namespace"
	unshare -m --propagation private -- bash "$HERE/runtime-tools.sh" __run "$2" "$RTDIR" "$RUN/$1" "$SCRATCH" "${TESTS[@]}"
}
t0=$(date +%s)
run_suite berth "$BERTH"
run_suite runc "$RUNC"
# Some tests race against their own containers (kill, killsig, delete wait a
# few seconds for a state): a file where berth fails what runc passes is run
# once more, and the second result stands. The files are named in the report.
mapfile -t RETRY < <("$TAPSUM" -list-failing -must-pass "$MUST_PASS" -excuse "$EXCUSE" berth="$RUN/berth" runc="$RUN/runc")
if [ ${#RETRY[@]} -gt 0 ] && [ ${#RETRY[@]} -le 6 ]; then
	mkdir -p "$RUN/berth.retry"
	log "running again with berth: ${RETRY[*]}"
	unshare -m --propagation private -- bash "$HERE/runtime-tools.sh" __run "$BERTH" "$RTDIR" "$RUN/berth.retry" "$SCRATCH" "${RETRY[@]}"
	cp "$RUN"/berth.retry/* "$RUN/berth/"
fi
t1=$(date +%s)
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

# --- clean up ----------------------------------------------------------------
clean_fail=0
sort -u "$RUN/ids.seen" -o "$RUN/ids.seen"
ours_re="($(paste -sd'|' "$RUN/ids.seen" | sed 's/|$//'))"
[ "$ours_re" = "()" ] && ours_re='(^$)'

# Containers still in a state root, made by the suite: delete -f them.
list_states | comm -13 "$RUN/states.before" - | while read -r st; do
	id=$(basename "$st")
	grep -qxF "$id" "$RUN/ids.seen" || continue
	case $st in /run/berth/*) rt=$BERTH ;; *) rt=$RUNC ;; esac
	echo "container $st"
	"$rt" delete -f "$id" >/dev/null 2>&1 || true
	[ -e "$st" ] && rm -rf "$st"
done >"$RUN/left.containers"

# Processes of the suite: rooted in, working in, or naming its scratch dir.
ours_pids() {
	local p
	for p in /proc/[0-9]*; do
		case "$(readlink "$p/root" 2>/dev/null)$(readlink "$p/cwd" 2>/dev/null)$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)" in
		*"$SCRATCH"*) echo "${p#/proc/}" ;;
		esac
	done
}
ours_cgroups() { # new cgroup dirs made by the suite, deepest first
	cgroup_dirs | comm -13 "$RUN/cgroups.before" - |
		grep -E "/(testdir|cgrouptest)(/|\$)|/$ours_re(/|\$)" | sort -r || true
}
left_pids=$(ours_pids | grep -vx "$$" || true)
for cg in $(ours_cgroups); do
	[ -f "$cg/cgroup.procs" ] && left_pids+=" $(cat "$cg/cgroup.procs")"
done
left_pids=$(echo $left_pids | tr ' ' '\n' | grep -vx "$$" | sort -un | tr '\n' ' ')
if [ -n "${left_pids// /}" ]; then
	ps -o pid,args -p "${left_pids// /,}" >"$RUN/left.procs" 2>/dev/null || true
	for pid in $left_pids; do kill -KILL "$pid" 2>/dev/null || true; done
	sleep 1
fi
ours_cgroups >"$RUN/left.cgroups"
for i in 1 2 3 4 5; do
	for cg in $(ours_cgroups); do rmdir "$cg" 2>/dev/null || true; done
	[ -z "$(ours_cgroups)" ] && break
	sleep 1
done
rm -rf "$SCRATCH" 2>/dev/null || true

# --- after -------------------------------------------------------------------
mounts_after=$(grep -c '' /proc/self/mountinfo)
new_mounts=$(mount_points | comm -13 "$RUN/mounts.before" - || true)
gone_mounts=$(comm -23 "$RUN/mounts.before" <(mount_points) || true)
our_mounts=$(printf '%s\n' "$new_mounts" | grep -E "^($WORK|/tmp/ocitest|/proc|/sys|/dev)" || true)
still_cgroups=$(ours_cgroups)
still_procs=$(ours_pids | grep -vx "$$" || true)
still_states=$(list_states | comm -13 "$RUN/states.before" - | grep -E "/$ours_re\$" || true)

echo
echo "host check (before -> after; the suite ran in a private mount namespace)"
printf '  mountinfo lines      %s -> %s\n' "$mounts_before" "$mounts_after"
if [ -n "$new_mounts$gone_mounts" ]; then
	printf '  mount points added during the run:   %s\n' "$(echo $new_mounts)"
	printf '  mount points removed during the run: %s\n' "$(echo $gone_mounts)"
	[ -z "$our_mounts" ] && echo "  (none of them under the suite's paths: other work on this host)"
fi
printf '  containers left by the suite, deleted:       %s\n' "$(grep -c . "$RUN/left.containers" || true)"
printf '  processes left by the suite, killed:         %s\n' "$(echo $left_pids | wc -w)"
[ -s "$RUN/left.procs" ] && sed 's/^/      /' "$RUN/left.procs"
printf '  cgroup dirs left by the suite, removed:      %s\n' "$(grep -c . "$RUN/left.cgroups" || true)"
[ -s "$RUN/left.cgroups" ] && sort "$RUN/left.cgroups" | sed 's/^/      /'
printf '  after clean-up: mounts %s, cgroup dirs %s, processes %s, state dirs %s (all must be 0)\n' \
	"$(printf '%s' "$our_mounts" | grep -c . || true)" "$(printf '%s' "$still_cgroups" | grep -c . || true)" \
	"$(printf '%s' "$still_procs" | grep -c . || true)" "$(printf '%s' "$still_states" | grep -c . || true)"
if [ -n "$our_mounts$still_cgroups$still_procs$still_states" ]; then
	echo "  NOT CLEAN:" $our_mounts $still_cgroups $still_procs $still_states
	clean_fail=1
fi

# --- report ------------------------------------------------------------------
echo
echo "OCI runtime-tools $RT_VERSION validation, $((t1 - t0))s: berth ($BERTH, $("$BERTH" --version | head -n1)) vs runc ($RUNC, $("$RUNC" --version | head -n1))"
if [ ${#RETRY[@]} -gt 6 ]; then
	echo "(berth failed what runc passes in ${#RETRY[@]} files: more than 6, so none was run again)"
elif [ ${#RETRY[@]} -gt 0 ]; then
	echo "(berth's results below for ${RETRY[*]} are from a second run: the first failed what runc passes)"
fi
echo
set +e
"$TAPSUM" -timeout "$TEST_TIMEOUT" -must-pass "$MUST_PASS" -excuse "$EXCUSE" ${markdown:+-markdown "$markdown"} berth="$RUN/berth" runc="$RUN/runc"
verdict=$?
set -e
if [ -n "$keep" ]; then
	mkdir -p "$keep"
	cp -r "$RUN/berth" "$RUN/runc" "$keep/"
	echo "raw results: $keep/{berth,runc}"
fi
[ "$verdict" -ge 2 ] && exit 2
[ "$clean_fail" = 1 ] && exit 2
if [ "$verdict" = 0 ] && grep -qx 125 "$RUN"/runc/*.rc; then
	echo "runc's run did not finish within ${BUDGET}s: the reference is incomplete" >&2
	exit 2
fi
exit "$verdict"
