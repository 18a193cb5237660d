#!/usr/bin/env bash
# containerd conformance: drive berth through containerd 1.6's runc v2 shim
# (containerd-shim-runc-v2) with `ctr run --runc-binary <berth>`.
#
#   sudo bash conformance/containerd/run.sh
#
# Runs a private containerd (own root, state, socket and opt dir under a temp
# dir, CRI and the snapshotters this host cannot use disabled), imports a
# busybox image built here from bundles/out/busybox/rootfs (an OCI image
# layout tarball; no registry), then checks run/exit codes, detach, exec, ps,
# pause/resume, kill + wait, delete, a pseudo-terminal and error reporting.
# Everything is torn down on exit, pass or fail, and leftovers (shims, mounts,
# cgroups, berth state) are checked and reported.
#
# Environment:
#   BERTH_CTD_KEEP=1   keep the temp dir (containerd log, shim bundles) for debugging
#   BERTH_CTD_NOBUILD=1  do not run `make build bundles` (use bin/berth as is)
#   BERTH_CTD_RUNTIME=/usr/sbin/runc  drive another runtime with the same steps,
#                      to tell a berth bug from a test bug (the steps that match
#                      berth's own error wording then fail, as they should)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NS=berth-test
IMAGE=docker.io/library/berth-busybox:conformance
STEP_TIMEOUT=${STEP_TIMEOUT:-30}

[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root" >&2; exit 1; }

say() { printf '%s\n' "$*"; }
hr() { say "----------------------------------------------------------------------"; }

# ---------------------------------------------------------------- prerequisites
hr
say "== setup: packages and build"
GO=$(bash "$REPO/scripts/setup.sh")
PATH="$(dirname "$GO"):$PATH"
export PATH
need=()
command -v containerd >/dev/null && command -v ctr >/dev/null &&
	command -v containerd-shim-runc-v2 >/dev/null || need+=(containerd)
command -v script >/dev/null || need+=(bsdutils)
command -v sha256sum >/dev/null || need+=(coreutils)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
	say "installing: ${need[*]}"
	apt-get update -qq
	# policy-rc.d: do not let the package start the system containerd.
	had_policy=0
	[ -e /usr/sbin/policy-rc.d ] && had_policy=1
	[ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	[ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
fi
if [ "${BERTH_CTD_NOBUILD:-0}" != 1 ]; then
	make -s -C "$REPO" build bundles >/dev/null
fi
BERTH=${BERTH_CTD_RUNTIME:-$REPO/bin/berth}
ROOTFS=$REPO/bundles/out/busybox/rootfs
[ -x "$BERTH" ] || { echo "run.sh: $BERTH missing" >&2; exit 1; }
[ -x "$ROOTFS/bin/busybox" ] || { echo "run.sh: $ROOTFS missing" >&2; exit 1; }
say "berth:      $("$BERTH" --version | head -n1) ($BERTH)"
say "containerd: $(containerd --version)"
say "shim:       $(command -v containerd-shim-runc-v2) ($(dpkg-query -W -f='${Version}' containerd 2>/dev/null || echo '?'))"

# ---------------------------------------------------------------- private containerd
T=$(mktemp -d /tmp/berth-ctd.XXXXXX)
SOCK=$T/containerd.sock
BROOT=$T/berth-root # --runc-root: berth's --root is $BROOT/$NS
CTD_PID=
STEP_PID=
CTR=(ctr --address "$SOCK" --namespace "$NS")
RUN_OPTS=(--runc-binary "$BERTH" --runc-root "$BROOT")

cat >"$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = ""
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
EOF

# leftovers prints what this run could have left behind on the host.
leftovers() {
	local found=0 l
	l=$(pgrep -af 'containerd-shim-runc-v2' | grep -F -- "-address $SOCK" || true)
	[ -z "$l" ] || { say "  LEFTOVER shim processes:"; say "$l" | sed 's/^/    /'; found=1; }
	l=$(pgrep -ax berth | grep -F -- "$T" || true)
	[ -z "$l" ] || { say "  LEFTOVER berth processes:"; say "$l" | sed 's/^/    /'; found=1; }
	l=$(grep -F "$T" /proc/self/mountinfo | awk '{print $5}' || true)
	[ -z "$l" ] || { say "  LEFTOVER mounts:"; say "$l" | sed 's/^/    /'; found=1; }
	# Container cgroups: cgroupsPath is /$NS/<id> (ctr's default).
	l=$(find /sys/fs/cgroup -mindepth 3 -maxdepth 3 -type d -path "/sys/fs/cgroup/*/$NS/*" 2>/dev/null || true)
	[ -z "$l" ] || { say "  LEFTOVER container cgroups:"; say "$l" | sed 's/^/    /'; found=1; }
	if [ -d "$BROOT/$NS" ]; then
		l=$(ls -A "$BROOT/$NS")
		[ -z "$l" ] || { say "  LEFTOVER berth state in $BROOT/$NS:"; say "$l" | sed 's/^/    /'; found=1; }
	fi
	return $found
}

cleanup() {
	local rc=$?
	set +e
	hr
	say "== teardown"
	# Interrupted in a step: stop that step's subshell and what it runs.
	if [ -n "${STEP_PID:-}" ]; then
		pkill -TERM -P "$STEP_PID" 2>/dev/null
		kill "$STEP_PID" 2>/dev/null
		wait "$STEP_PID" 2>/dev/null
	fi
	if [ -n "$CTD_PID" ] && kill -0 "$CTD_PID" 2>/dev/null; then
		# Whatever a failed step left: kill and delete tasks, delete containers.
		for id in $("${CTR[@]}" task ls -q 2>/dev/null); do
			timeout 10 "${CTR[@]}" task kill -a -s SIGKILL "$id" >/dev/null 2>&1
			timeout 10 "${CTR[@]}" task delete -f "$id" >/dev/null 2>&1
		done
		for id in $("${CTR[@]}" container ls -q 2>/dev/null); do
			timeout 10 "${CTR[@]}" container delete "$id" >/dev/null 2>&1
		done
		timeout 10 "${CTR[@]}" image rm "$IMAGE" >/dev/null 2>&1
		say "leftover check with containerd still up:"
		leftovers && say "  none" || LEFT=1
		kill "$CTD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$CTD_PID" 2>/dev/null
		wait "$CTD_PID" 2>/dev/null
		if kill -0 "$CTD_PID" 2>/dev/null; then
			say "  LEFTOVER containerd $CTD_PID still running"; LEFT=1
		else
			say "containerd stopped"
		fi
	fi
	# Last resort: shims of this containerd, then mounts under $T.
	for p in $(pgrep -f 'containerd-shim-runc-v2' 2>/dev/null); do
		grep -qF -- "$SOCK" "/proc/$p/cmdline" 2>/dev/null && { say "killing leftover shim $p"; kill -9 "$p"; }
	done
	grep -F "$T" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		say "unmounting leftover $m"; umount -l "$m"
	done
	# The parent cgroup /$NS: libcontainer removes a container's own cgroup
	# and never its parents (runc does the same), so it is expected here.
	local parents
	parents=$(ls -d /sys/fs/cgroup/*/"$NS" 2>/dev/null | wc -l)
	for d in /sys/fs/cgroup/*/"$NS"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	[ "$parents" = 0 ] || say "removed the parent cgroup /$NS in $parents hierarchies (expected: runtimes leave parents)"
	if [ $rc != 0 ] && [ -s "$T/containerd.log" ]; then
		# (Known noise left out: devmapper not configured, "copy shim log",
		# and the shim cleanup's "failed to remove runc container ... exit
		# status 255" that follows a successful delete; see README.md.)
		local errs
		errs=$(grep -aE 'level=(error|fatal)|failed' "$T/containerd.log" |
			grep -avE 'devmapper|copy shim log|failed to remove runc container|failed to read init pid file' |
			tail -n 10)
		[ -z "$errs" ] || { say "containerd.log, errors (last 10):"; say "$errs" | sed 's/^/  | /'; }
	fi
	say "final leftover check:"
	if leftovers; then say "  none"; else LEFT=1; fi
	if ls -d /sys/fs/cgroup/*/"$NS" >/dev/null 2>&1; then
		say "  LEFTOVER cgroup /$NS could not be removed"; LEFT=1
	fi
	if [ "${BERTH_CTD_KEEP:-0}" = 1 ]; then
		say "kept $T"
	else
		rm -rf "$T"
	fi
	[ "${LEFT:-0}" = 0 ] || { say "RESULT: leftovers found"; [ $rc != 0 ] || rc=1; }
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hr
say "== start containerd ($T)"
containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
CTD_PID=$!
for _ in $(seq 100); do
	[ -S "$SOCK" ] && "${CTR[@]}" version >/dev/null 2>&1 && break
	kill -0 "$CTD_PID" 2>/dev/null || { cat "$T/containerd.log"; echo "containerd died" >&2; exit 1; }
	sleep 0.1
done
"${CTR[@]}" version
"${CTR[@]}" plugins ls | awk 'NR==1 || /runtime|overlayfs|tasks/'
# 1.6's tasks service needs both the v1 and the v2 runtime plugins.
if "${CTR[@]}" plugins ls | awk '/runtime|overlayfs|tasks/ && $NF != "ok"' | grep -q .; then
	echo "containerd: a needed plugin failed to load" >&2
	tail -n 20 "$T/containerd.log" >&2
	exit 1
fi

# ---------------------------------------------------------------- steps
PASS=0
FAIL=0
RESULTS=()
OUT=$T/out # each command's combined output

# step NAME FUNC: run FUNC in a subshell with errexit on (a background job, so
# that errexit is not switched off as it is in an `if` condition).
step() {
	local name=$1 fn=$2 rc
	hr
	say "== $name"
	"$fn" &
	STEP_PID=$!
	if wait "$STEP_PID"; then
		say "-> PASS: $name"
		PASS=$((PASS + 1))
		RESULTS+=("PASS  $name")
	else
		rc=$?
		say "-> FAIL: $name (exit $rc)"
		FAIL=$((FAIL + 1))
		RESULTS+=("FAIL  $name")
	fi
	STEP_PID=
}

# x CMD...: print and run CMD with a timeout, output to the terminal and $OUT;
# sets RC to its exit code (never fails by itself).
x() {
	say "+ $*"
	set +e
	timeout "$STEP_TIMEOUT" "$@" >"$OUT" 2>&1
	RC=$?
	set -e
	sed 's/^/  | /' "$OUT"
	say "  (exit $RC)"
}
# xr CMD...: x, run again (up to twice) while the output is empty. ctr can
# lose a short-lived process's stdout under CPU load, with runc as with
# berth (containerd issue #5741: measured here, 6/100 execs with runc and
# 1/100 with berth on 2 busy cores); the exit code is still checked.
xr() {
	local try
	for try in 1 2 3; do
		x "$@"
		[ ! -s "$OUT" ] || return 0
		[ $try = 3 ] || say "  (empty output: containerd's stdout race, #5741; again)"
	done
}
# ok CMD...: x, and fail unless it exits 0.
ok() { x "$@"; [ "$RC" = 0 ] || { say "  expected exit 0"; return 1; }; }
expect_rc() { [ "$RC" = "$1" ] || { say "  expected exit $1, got $RC"; return 1; }; }
expect_out() { grep -aqE -- "$1" "$OUT" || { say "  expected output matching /$1/"; return 1; }; }
expect_no_out() { ! grep -aqE -- "$1" "$OUT" || { say "  unexpected output matching /$1/"; return 1; }; }
# task_status ID: the STATUS column of `ctr task ls` for ID.
task_status() { "${CTR[@]}" task ls | awk -v id="$1" '$1 == id {print $3}'; }
task_pid() { "${CTR[@]}" task ls | awk -v id="$1" '$1 == id {print $2}'; }
# wait_status ID STATUS: poll up to 10 s.
wait_status() {
	local s
	for _ in $(seq 100); do
		s=$(task_status "$1")
		[ "$s" = "$2" ] && { say "  task $1 is $s"; return 0; }
		sleep 0.1
	done
	say "  task $1 is '$s', expected $2"
	return 1
}
# berth_state ID: berth's own view of the container (runc state JSON).
berth_state() { "$BERTH" --root "$BROOT/$NS" state "$1"; }
expect_berth_status() {
	local s
	s=$(berth_state "$1" | jq -r .status)
	say "  berth state $1: $s"
	[ "$s" = "$2" ] || { say "  expected berth status $2"; return 1; }
}

s_image() {
	# An OCI image layout with one uncompressed layer: the bundle's rootfs.
	local L=$T/image layer cfg man lsize csize msize
	mkdir -p "$L/blobs/sha256"
	tar -C "$ROOTFS" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -cf "$L/layer.tar" .
	layer=$(sha256sum "$L/layer.tar" | cut -d' ' -f1)
	lsize=$(stat -c %s "$L/layer.tar")
	mv "$L/layer.tar" "$L/blobs/sha256/$layer"
	printf '%s' "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"],\"WorkingDir\":\"/\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer\"]},\"history\":[{\"created_by\":\"berth conformance/containerd/run.sh\"}]}" >"$L/config.json"
	cfg=$(sha256sum "$L/config.json" | cut -d' ' -f1)
	csize=$(stat -c %s "$L/config.json")
	mv "$L/config.json" "$L/blobs/sha256/$cfg"
	printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cfg\",\"size\":$csize},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$layer\",\"size\":$lsize}]}" >"$L/manifest.json"
	man=$(sha256sum "$L/manifest.json" | cut -d' ' -f1)
	msize=$(stat -c %s "$L/manifest.json")
	mv "$L/manifest.json" "$L/blobs/sha256/$man"
	printf '%s' "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$man\",\"size\":$msize,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":{\"io.containerd.image.name\":\"$IMAGE\",\"org.opencontainers.image.ref.name\":\"conformance\"}}]}" >"$L/index.json"
	printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
	tar -C "$L" -cf "$T/image.tar" oci-layout index.json blobs
	say "  layer sha256:$layer ($lsize bytes), config sha256:$cfg, manifest sha256:$man"
	ok "${CTR[@]}" images import "$T/image.tar"
	ok "${CTR[@]}" images ls
	expect_out "^${IMAGE}[[:space:]].*sha256:$man"
	ok "${CTR[@]}" images check
	expect_out "complete"
}

s_foreground_exit() {
	xr "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" fg1 sh -c 'echo hello from pid $$; exit 7'
	expect_rc 7
	expect_out '^hello from pid 1$'
	# --rm removed the container and berth's state.
	ok "${CTR[@]}" container ls -q
	expect_no_out '^fg1$'
	[ ! -e "$BROOT/$NS/fg1" ] || { say "  berth state $BROOT/$NS/fg1 left"; return 1; }
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" fg0 true
	expect_rc 0
}

s_detached() {
	# sh as PID 1 ignores SIGTERM unless it traps it: exit 42 on TERM.
	ok "${CTR[@]}" run -d "${RUN_OPTS[@]}" "$IMAGE" d1 sh -c 'trap "exit 42" TERM; while :; do sleep 1; done'
	wait_status d1 RUNNING
	ok "${CTR[@]}" task ls
	# The runtime options (a protobuf: BinaryName, Root) name berth.
	say "+ ${CTR[*]} container info d1 | jq -r .Runtime.Options.value | base64 -d"
	"${CTR[@]}" container info d1 | jq -r .Runtime.Options.value | base64 -d | tr -c '[:print:]' ' ' >"$OUT"
	sed 's/^/  | /' "$OUT"; echo
	expect_out "$BERTH"
	expect_berth_status d1 running
	local pid
	pid=$(task_pid d1)
	[ "$(berth_state d1 | jq -r .pid)" = "$pid" ] || { say "  berth pid != ctr pid $pid"; return 1; }
	# The shim (berth's parent during create) reaped berth and adopted the init.
	local ppid
	ppid=$(ps -o ppid= -p "$pid" | tr -d ' ')
	say "  init $pid, parent $ppid: $(ps -o args= -p "$ppid")"
	ps -o args= -p "$ppid" | grep -q 'containerd-shim-runc-v2 .*-id d1 ' || { say "  init's parent is not d1's shim"; return 1; }
}

s_exec() {
	xr "${CTR[@]}" task exec --exec-id e1 d1 sh -c 'echo exec as uid $(id -u); exit 3'
	expect_rc 3
	expect_out '^exec as uid 0$'
	# An exec sees the container's PID namespace: PID 1 is the init's sh.
	xr "${CTR[@]}" task exec --exec-id e2 d1 sh -c 'cat /proc/1/cmdline | tr "\0" " "; echo'
	expect_rc 0
	expect_out '^sh -c trap'
	# The cwd of an exec.
	xr "${CTR[@]}" task exec --exec-id e3 --cwd /tmp d1 sh -c 'echo "cwd $PWD"'
	expect_rc 0
	expect_out '^cwd /tmp$'
	# A detached exec, seen by ps, then killed through ctr.
	ok "${CTR[@]}" task exec -d --exec-id e4 d1 sleep 1000
	sleep 0.5
	ok "${CTR[@]}" task ps d1
	[ "$(grep -acE '^[0-9]+' "$OUT")" -ge 3 ] || { say "  expected >= 3 processes (init, its sleep, exec e4)"; return 1; }
	ok "${CTR[@]}" task kill --exec-id e4 -s SIGKILL d1
	# A duplicate exec id is refused.
	ok "${CTR[@]}" task exec -d --exec-id e5 d1 sleep 1000
	x "${CTR[@]}" task exec -d --exec-id e5 d1 true
	[ "$RC" != 0 ] || { say "  duplicate exec id accepted"; return 1; }
	ok "${CTR[@]}" task kill --exec-id e5 -s SIGKILL d1
	# A failing exec: its binary does not exist; berth's error reaches ctr.
	x "${CTR[@]}" task exec --exec-id e6 d1 /no/such/exec-binary
	[ "$RC" != 0 ] || { say "  exec of a missing binary succeeded"; return 1; }
	expect_out 'OCI runtime exec failed'
	expect_out 'stat /no/such/exec-binary: no such file or directory'
	# An invalid process.json: berth's validation names the field.
	x "${CTR[@]}" task exec --exec-id e7 --cwd relative d1 true
	[ "$RC" != 0 ] || { say "  exec with a relative cwd succeeded"; return 1; }
	expect_out 'OCI runtime exec failed'
	expect_out 'cwd: "relative" is not absolute'
	# The container is unharmed.
	wait_status d1 RUNNING
}

s_ps() {
	local pid
	pid=$(task_pid d1)
	ok "${CTR[@]}" task ps d1
	expect_out "^${pid}[[:space:]]"
	# berth ps directly, as the shim would: it lists the same init pid.
	ok "$BERTH" --root "$BROOT/$NS" ps --format json d1
	expect_out "(^|[^0-9])$pid([^0-9]|$)"
}

s_pause_resume() {
	ok "${CTR[@]}" task pause d1
	wait_status d1 PAUSED
	expect_berth_status d1 paused
	local pid
	pid=$(task_pid d1)
	say "  init $pid: $(grep '^State' "/proc/$pid/status"), freezer: $(cat "/sys/fs/cgroup/freezer/$NS/d1/freezer.state" 2>/dev/null || echo '?')"
	ok "${CTR[@]}" task resume d1
	wait_status d1 RUNNING
	expect_berth_status d1 running
	xr "${CTR[@]}" task exec --exec-id after-resume d1 echo resumed
	expect_rc 0
	expect_out '^resumed$'
}

s_kill_wait_delete() {
	# SIGTERM: the init traps it and exits 42; ctr task delete reports it.
	ok "${CTR[@]}" task kill d1
	wait_status d1 STOPPED
	ok "${CTR[@]}" task ls
	ok "${CTR[@]}" task delete d1
	expect_out 'exit code 42'
	ok "${CTR[@]}" task ls -q
	expect_no_out '^d1$'
	[ ! -e "$BROOT/$NS/d1" ] || { say "  berth state $BROOT/$NS/d1 left after task delete"; return 1; }
	ok "${CTR[@]}" container delete d1
	ok "${CTR[@]}" container ls -q
	expect_no_out '^d1$'

	# ctr run in the foreground waits on the task; SIGKILL from another ctr
	# is seen as 137 (128 + 9).
	local w=$T/wait.out wpid
	say "+ ${CTR[*]} run --rm ${RUN_OPTS[*]} $IMAGE k1 sleep 1000 &"
	timeout "$STEP_TIMEOUT" "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" k1 sleep 1000 >"$w" 2>&1 &
	wpid=$!
	wait_status k1 RUNNING
	ok "${CTR[@]}" task kill -s SIGKILL k1
	set +e
	wait "$wpid"
	RC=$?
	set -e
	sed 's/^/  | /' "$w"
	say "  foreground ctr run exited $RC"
	expect_rc 137
	ok "${CTR[@]}" container ls -q
	expect_no_out '^k1$'

	# task delete of a running task fails without -f, works with -f.
	ok "${CTR[@]}" run -d "${RUN_OPTS[@]}" "$IMAGE" k2 sleep 1000
	wait_status k2 RUNNING
	x "${CTR[@]}" task delete k2
	[ "$RC" != 0 ] || { say "  task delete of a running task succeeded"; return 1; }
	ok "${CTR[@]}" task delete -f k2
	ok "${CTR[@]}" container delete k2
	[ ! -e "$BROOT/$NS/k2" ] || { say "  berth state $BROOT/$NS/k2 left"; return 1; }
}

s_tty() {
	# script gives ctr a terminal; read from a pty, the output may begin
	# with a NUL byte and has CRLF line ends: compare loosely.
	xr script -qec "${CTR[*]} run -t --rm ${RUN_OPTS[*]} $IMAGE t1 sh -c 'tty; test -t 0 && echo stdin-is-a-tty; exit 5'" /dev/null
	expect_rc 5
	expect_out '/dev/pts/[0-9]+'
	expect_out 'stdin-is-a-tty'
	# And an exec with a terminal in a detached container.
	ok "${CTR[@]}" run -d "${RUN_OPTS[@]}" "$IMAGE" t2 sleep 1000
	# (the sleep lets ctr's resize land before the exec exits)
	xr script -qec "${CTR[*]} task exec -t --exec-id te t2 sh -c 'tty; sleep 0.3; exit 4'" /dev/null
	expect_rc 4
	expect_out '/dev/pts/[0-9]+'
	ok "${CTR[@]}" task kill -s SIGKILL t2
	wait_status t2 STOPPED
	ok "${CTR[@]}" task delete t2
	ok "${CTR[@]}" container delete t2
}

s_create_error() {
	# The args name a binary that is not in the image: berth's create fails;
	# the shim reads berth's JSON log (--log <bundle>/log.json --log-format
	# json) and ctr must show berth's message.
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" bad1 /no/such/binary
	[ "$RC" != 0 ] || { say "  run of a missing binary succeeded"; return 1; }
	expect_out 'OCI runtime create failed: create failed: unable to start container process'
	expect_out 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory'

	# Invalid spec options, rejected by berth's bundle validation, which
	# names the field (runc words these differently).
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" --cwd relative/dir "$IMAGE" bad2 true
	[ "$RC" != 0 ] || { say "  run with a relative cwd succeeded"; return 1; }
	expect_out 'OCI runtime create failed'
	expect_out 'config.json: process.cwd: "relative/dir" is not absolute'
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" --rootfs-propagation bogus "$IMAGE" bad3 true
	[ "$RC" != 0 ] || { say "  run with rootfsPropagation=bogus succeeded"; return 1; }
	expect_out 'OCI runtime create failed'
	expect_out 'rootfsPropagation=bogus is not supported'

	# ctr run --rm removed the containers; nothing is left in berth's root.
	ok "${CTR[@]}" container ls -q
	expect_no_out '^bad[0-9]$'
	for id in bad1 bad2 bad3; do
		[ ! -e "$BROOT/$NS/$id" ] || { say "  berth state $BROOT/$NS/$id left"; return 1; }
	done
}

s_invocation() {
	# A wrapper records the shim's (go-runc's) command lines, then execs berth.
	local W=$T/berth-wrapper CALLS=$T/calls.log B
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>%s\nexec %s "$@"\n' "$CALLS" "$BERTH" >"$W"
	chmod +x "$W"
	: >"$CALLS"
	# A bogus capability is ignored with a warning (as runc does): the
	# warning must land in the bundle's log.json as JSON.
	ok "${CTR[@]}" run -d --runc-binary "$W" --runc-root "$BROOT" --cap-add CAP_BERTH_BOGUS "$IMAGE" w1 sleep 1000
	wait_status w1 RUNNING
	B=$T/state/io.containerd.runtime.v2.task/$NS/w1
	ok "${CTR[@]}" task exec --exec-id wx w1 true
	ok "${CTR[@]}" task pause w1
	ok "${CTR[@]}" task resume w1
	ok "${CTR[@]}" task ps w1
	say "+ cat $B/log.json"
	sed 's/^/  | /' "$B/log.json"
	jq -e . "$B/log.json" >/dev/null || { say "  log.json is not JSON lines"; return 1; }
	jq -e 'select(.level == "warning" and (.msg | test("CAP_BERTH_BOGUS")))' "$B/log.json" >/dev/null ||
		{ say "  no JSON warning naming CAP_BERTH_BOGUS in log.json"; return 1; }
	ok "${CTR[@]}" task kill -s SIGKILL w1
	wait_status w1 STOPPED
	ok "${CTR[@]}" task delete w1
	ok "${CTR[@]}" container delete w1
	say "  command lines the shim ran (<bundle> = $B):"
	sed "s|$B|<bundle>|g; s/^/  | /" "$CALLS"
	local G="--root $BROOT/$NS --log $B/log.json --log-format json"
	for want in "create --bundle $B --pid-file $B/init.pid w1" "start w1" \
		"exec --process .* --detach --pid-file $B/wx.pid w1" "pause w1" "resume w1" \
		"ps --format json w1" "kill w1 9" "delete w1"; do
		grep -qE -- "^$G $want\$" "$CALLS" || { say "  no call matching: $G $want"; return 1; }
	done
}

s_kill_all_stopped() {
	# `ctr task kill --all` runs `<runtime> kill --all <id> <sig>`; runc 1.5
	# ignores "container not running" when --all is given (kill.go), so ctr
	# succeeds on a stopped task with runc.
	ok "${CTR[@]}" run -d "${RUN_OPTS[@]}" "$IMAGE" ka sh -c 'exit 3'
	wait_status ka STOPPED
	x "${CTR[@]}" task kill --all -s SIGKILL ka
	local rc=$RC
	ok "${CTR[@]}" task delete ka
	ok "${CTR[@]}" container delete ka
	[ "$rc" = 0 ] || { say "  kill --all of a stopped task failed (runc 1.5 exits 0)"; return 1; }
}

s_cleanup_state() {
	ok "${CTR[@]}" task ls -q
	[ ! -s "$OUT" ] || { say "  tasks left"; return 1; }
	ok "${CTR[@]}" container ls -q
	[ ! -s "$OUT" ] || { say "  containers left"; return 1; }
	ok "$BERTH" --root "$BROOT/$NS" list
	[ "$(wc -l <"$OUT")" -le 1 ] || { say "  berth list not empty"; return 1; }
	leftovers
}

step "import busybox image (OCI layout built from bundles/out/busybox/rootfs)" s_image
step "foreground run: exit code passed through (sh -c 'exit 7' -> 7)" s_foreground_exit
step "detached run (-d), berth state agrees" s_detached
step "task exec (--exec-id): exit code, output, detached exec, errors" s_exec
step "task ps" s_ps
step "task pause / resume" s_pause_resume
step "task kill, exit status, task delete, container delete" s_kill_wait_delete
step "pseudo-terminal (-t) run and exec" s_tty
step "failing create surfaces berth's error text" s_create_error
step "shim invokes berth with runc's CLI; log.json is JSON" s_invocation
step "task kill --all of a stopped task (runc ignores not-running)" s_kill_all_stopped
step "nothing left in containerd or berth's root" s_cleanup_state

hr
say "== summary ($(containerd --version | awk '{print $3}'))"
printf '  %s\n' "${RESULTS[@]}"
say "containerd: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
