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
# Everything is torn down on exit, pass or fail, and leftovers (processes,
# shim sockets, mounts, cgroups, runtime state, temp dirs) are checked and
# reported; any leftover fails the run.
#
# Environment:
#   BERTH_CTD_KEEP=1   keep the temp dir (containerd log, shim bundles) for debugging
#   BERTH_CTD_NOBUILD=1  do not run `make build bundles` (use bin/berth as is)
#   BERTH_CTD_RUNTIME=/usr/sbin/runc  drive another runtime with the same steps,
#                      to tell a berth bug from a test bug; the step that checks
#                      berth's own error wording then only reports (SKIP)
#   STEP_TIMEOUT=30    time limit of each ctr command, in seconds
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
IMAGE=docker.io/library/berth-busybox:conformance
STEP_TIMEOUT=${STEP_TIMEOUT:-30}
# The shims' sockets: containerd 1.6 puts them in /run/containerd/s whatever
# its config says (runtime/v2/shim.SocketAddress), named by
# sha256(<containerd address>/<namespace>/<container id>).
SHIM_SOCKETS=/run/containerd/s

[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root" >&2; exit 1; }

say() { printf '%s\n' "$*"; }
hr() { say "----------------------------------------------------------------------"; }
START=$(date +%s)

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
command -v umoci >/dev/null || need+=(umoci)
command -v pgrep >/dev/null || need+=(procps)
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
# (Read the version whole: `... | grep -q` under pipefail fails when the
# writer gets SIGPIPE.)
RUNTIME_VERSION=$("$BERTH" --version)
IS_BERTH=0
case $RUNTIME_VERSION in "berth version "*) IS_BERTH=1 ;; esac
say "runtime:    ${RUNTIME_VERSION%%$'\n'*} ($BERTH)"
say "containerd: $(containerd --version)"
say "shim:       $(command -v containerd-shim-runc-v2) ($(dpkg-query -W -f='${Version}' containerd 2>/dev/null || echo '?'))"

# ---------------------------------------------------------------- private containerd
T=$(mktemp -d /tmp/berth-ctd.XXXXXX)
# A namespace of its own per run: it names the containers' cgroups
# (/<namespace>/<id>), so two runs never share one.
NS=berth-${T##*.}
SOCK=$T/containerd.sock
BROOT=$T/berth-root # --runc-root: the runtime's --root is $BROOT/$NS
CTD_PID=
STEP_PID=
CTR=(ctr --address "$SOCK" --namespace "$NS")
# --fifo-dir: ctr's stdio fifos go under $T, not /run/containerd/fifo (ctr
# never removes those of a detached exec).
FIFO=(--fifo-dir "$T/fifo")
RUN_OPTS=(--runc-binary "$BERTH" --runc-root "$BROOT" "${FIFO[@]}")
had_run_ctd=0
[ -e /run/containerd ] && had_run_ctd=1
had_sockets=0
[ -e "$SHIM_SOCKETS" ] && had_sockets=1

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

# shim_sockets prints the socket paths of every shim this containerd started
# (containerd logs "starting signal loop ... path=<state>/<ns>/<id>").
shim_sockets() {
	local id
	[ -f "$T/containerd.log" ] || return 0
	grep -ao "path=$T/state/io.containerd.runtime.v2.task/$NS/[^ ]*" "$T/containerd.log" |
		sed 's|.*/||' | sort -u | while read -r id; do
		printf '%s/%s\n' "$SHIM_SOCKETS" "$(printf '%s' "$SOCK/$NS/$id" | sha256sum | cut -d' ' -f1)"
	done
}

# procs PATTERN: the processes whose command line matches PATTERN, once
# those that are exiting (a shim just after its task's delete, the shim's
# own cleanup run) had up to 5 s to go.
procs() {
	local l
	for _ in $(seq 50); do
		l=$(pgrep -af -- "$1" || true)
		[ -n "$l" ] || return 0
		sleep 0.1
	done
	printf '%s\n' "$l"
}

# leftovers prints what this run could have left behind on the host and
# returns 1 if there is any.
leftovers() {
	local found=0 l
	# ctr, script, shims: everything that names this containerd's socket.
	l=$(procs "$SOCK")
	[ -z "$l" ] || { say "  LEFTOVER processes naming $SOCK:"; say "$l" | sed 's/^/    /'; found=1; }
	l=$(procs "$BROOT")
	[ -z "$l" ] || { say "  LEFTOVER runtime processes:"; say "$l" | sed 's/^/    /'; found=1; }
	l=$(grep -F "$T" /proc/self/mountinfo | awk '{print $5}' || true)
	[ -z "$l" ] || { say "  LEFTOVER mounts:"; say "$l" | sed 's/^/    /'; found=1; }
	# Container cgroups: cgroupsPath is /$NS/<id> (ctr's default); v1 and v2.
	l=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path "*/$NS/*" 2>/dev/null || true)
	[ -z "$l" ] || { say "  LEFTOVER container cgroups:"; say "$l" | sed 's/^/    /'; found=1; }
	if [ -d "$BROOT/$NS" ]; then
		l=$(ls -A "$BROOT/$NS")
		[ -z "$l" ] || { say "  LEFTOVER runtime state in $BROOT/$NS:"; say "$l" | sed 's/^/    /'; found=1; }
	fi
	l=$(shim_sockets | while read -r s; do [ ! -e "$s" ] || echo "$s"; done)
	[ -z "$l" ] || { say "  LEFTOVER shim sockets:"; say "$l" | sed 's/^/    /'; found=1; }
	# go-runc's exec process files (runc exec --process /tmp/runc-process*).
	l=$(find /tmp -maxdepth 1 -name 'runc-process*' -newer "$T/config.toml" 2>/dev/null || true)
	[ -z "$l" ] || { say "  LEFTOVER go-runc process files:"; say "$l" | sed 's/^/    /'; found=1; }
	return $found
}

cleanup() {
	local rc=$?
	set +e
	hr
	say "== teardown"
	local t0=$SECONDS
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
		say "leftover check with containerd still up ($((SECONDS - t0)) s into teardown):"
		leftovers && say "  none" || LEFT=1
		kill "$CTD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$CTD_PID" 2>/dev/null
		wait "$CTD_PID" 2>/dev/null
		if kill -0 "$CTD_PID" 2>/dev/null; then
			say "  LEFTOVER containerd $CTD_PID still running"; LEFT=1
		else
			say "containerd $CTD_PID stopped ($((SECONDS - t0)) s into teardown)"
		fi
	fi
	# Last resort: processes that name this containerd (shims, ctr), their
	# sockets, then mounts under $T. Each is reported as a leftover above.
	for p in $(pgrep -f -- "$SOCK" 2>/dev/null); do
		say "killing leftover $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-100) ($p)"; kill -9 "$p"
	done
	shim_sockets | while read -r s; do [ ! -e "$s" ] || { say "removing leftover $s"; rm -f "$s"; }; done
	grep -F "$T" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		say "unmounting leftover $m"; umount -l "$m"
	done
	# The parent cgroup /$NS: libcontainer removes a container's own cgroup
	# and never its parents (runc does the same), so it is expected here.
	local parents
	parents=$(ls -d /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS" 2>/dev/null | wc -l)
	for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS"; do
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
	say "final leftover check ($((SECONDS - t0)) s into teardown):"
	if leftovers; then say "  none"; else LEFT=1; fi
	if ls -d /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS" >/dev/null 2>&1; then
		say "  LEFTOVER cgroup /$NS could not be removed"; LEFT=1
	fi
	# /run/containerd/s (and /run/containerd) exist only for the shims'
	# sockets: remove them if this run made them and they are empty.
	[ $had_sockets = 1 ] || rmdir "$SHIM_SOCKETS" 2>/dev/null
	[ $had_run_ctd = 1 ] || rmdir /run/containerd 2>/dev/null
	if [ $had_run_ctd = 0 ] && [ -e /run/containerd ]; then
		say "  LEFTOVER /run/containerd (not there before this run):"
		find /run/containerd | sed 's/^/    /'
		LEFT=1
	fi
	if [ "${BERTH_CTD_KEEP:-0}" = 1 ]; then
		say "kept $T"
	else
		rm -rf "$T"
		[ ! -e "$T" ] || { say "  LEFTOVER $T could not be removed"; LEFT=1; }
	fi
	[ "${LEFT:-0}" = 0 ] || { say "RESULT: leftovers found"; [ $rc != 0 ] || rc=1; }
	say "total time: $(($(date +%s) - START)) s"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "setup took $(($(date +%s) - START)) s"
hr
say "== start containerd ($T, namespace $NS)"
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
if ! "${CTR[@]}" plugins ls | awk '/runtime|overlayfs|tasks/ && $NF != "ok" {bad = 1} END {exit bad}'; then
	echo "containerd: a needed plugin failed to load" >&2
	tail -n 20 "$T/containerd.log" >&2
	exit 1
fi

# ---------------------------------------------------------------- steps
PASS=0
FAIL=0
SKIP=0
RESULTS=()
OUT=$T/out # each command's combined output
SKIPPED=77 # a step that exits with this did not apply (reported as SKIP)

# step NAME FUNC: run FUNC in a subshell with errexit on (a background job, so
# that errexit is not switched off as it is in an `if` condition).
step() {
	local name=$1 fn=$2 rc=0 t0=$SECONDS
	hr
	say "== $name"
	"$fn" &
	STEP_PID=$!
	wait "$STEP_PID" || rc=$?
	STEP_PID=
	if [ $rc = 0 ]; then
		say "-> PASS: $name ($((SECONDS - t0)) s)"
		PASS=$((PASS + 1))
		RESULTS+=("PASS  $name")
	elif [ $rc = $SKIPPED ]; then
		say "-> SKIP: $name ($((SECONDS - t0)) s)"
		SKIP=$((SKIP + 1))
		RESULTS+=("SKIP  $name")
	else
		say "-> FAIL: $name (exit $rc, $((SECONDS - t0)) s)"
		FAIL=$((FAIL + 1))
		RESULTS+=("FAIL  $name")
	fi
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
# ok CMD...: x, and fail unless it exits 0.
ok() { x "$@"; [ "$RC" = 0 ] || { say "  expected exit 0"; return 1; }; }
expect_rc() { [ "$RC" = "$1" ] || { say "  expected exit $1, got $RC"; return 1; }; }
expect_out() { grep -aqE -- "$1" "$OUT" || { say "  expected output matching /$1/"; return 1; }; }
expect_no_out() { ! grep -aqE -- "$1" "$OUT" || { say "  unexpected output matching /$1/"; return 1; }; }
expect_fixed() { grep -aqF -- "$1" "$OUT" || { say "  expected output containing: $1"; return 1; }; }

# tty_x CMD [WAIT LINE]...: run the shell command CMD under a pseudo-terminal
# that script(1) makes, with script's stdin a fifo that this shell types
# into. For each WAIT LINE pair: wait (up to 10 s) until the output matches
# the ERE WAIT, then type LINE and a newline. Output, its NUL bytes and CRs
# removed, goes to $OUT and the exit code to RC; returns 1 if a WAIT never
# matched.
#
# Why the handshake: the shim stops copying a terminal's output as soon as
# the process exits (process.Init.setExited -> ShutdownConsole), so what a
# short-lived process wrote just before it exited can be lost, with runc as
# with berth (measured: 1 in 60 runs of `ctr run -t ... sh -c 'tty; ...'`).
# Waiting for the output before the line that lets the process exit makes
# the check deterministic, and it checks the terminal's input path too.
tty_x() {
	local cmd=$1 in=$T/tty.in raw=$T/tty.raw sp missed=0 seen
	shift
	say "+ script -qec \"$cmd\" /dev/null  (stdin: a fifo this script types into)"
	rm -f "$in"
	mkfifo "$in"
	: >"$raw"
	timeout "$STEP_TIMEOUT" script -qec "$cmd" /dev/null <"$in" >"$raw" 2>&1 &
	sp=$!
	exec 7>"$in"
	# If script is gone, typing must fail, not kill this shell with SIGPIPE.
	trap '' PIPE
	while [ $# -ge 2 ]; do
		seen=0
		for _ in $(seq 100); do
			tr -d '\000\r' <"$raw" >"$OUT"
			grep -aqE -- "$1" "$OUT" && { seen=1; break; }
			sleep 0.1
		done
		if [ $seen = 1 ]; then
			say "  (output matched /$1/: typing \"$2\")"
		else
			say "  (output never matched /$1/; typing \"$2\" anyway)"
			missed=1
		fi
		printf '%s\n' "$2" >&7 || say "  (could not type: script is gone)"
		shift 2
	done
	set +e
	wait "$sp"
	RC=$?
	set -e
	exec 7>&-
	trap - PIPE
	tr -d '\000\r' <"$raw" >"$OUT"
	sed 's/^/  | /' "$OUT"
	say "  (exit $RC)"
	[ $missed = 0 ]
}

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
# runtime_state ID: the runtime's own view of the container (runc state JSON).
runtime_state() { "$BERTH" --root "$BROOT/$NS" state "$1"; }
expect_runtime_status() {
	local s
	s=$(runtime_state "$1" | jq -r .status)
	say "  $(basename "$BERTH") state $1: $s"
	[ "$s" = "$2" ] || { say "  expected status $2"; return 1; }
}
# cmdline PID: a process's arguments, space-separated.
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ $//'; }

s_image() {
	# An OCI image layout whose one layer is the bundle's rootfs, made by
	# umoci (digests, sizes and media types are its business, not ours).
	local L=$T/image B=$T/image-bundle man
	umoci init --layout "$L"
	umoci new --image "$L:conformance"
	umoci unpack --image "$L:conformance" "$B"
	cp -a "$ROOTFS/." "$B/rootfs/"
	umoci repack --image "$L:conformance" "$B"
	umoci config --image "$L:conformance" --architecture amd64 --os linux \
		--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--config.cmd sh --config.workingdir / --history.created_by "berth conformance/containerd/run.sh"
	umoci gc --layout "$L"
	rm -rf "$B"
	man=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "conformance") | .digest' "$L/index.json")
	tar -C "$L" -cf "$T/image.tar" .
	say "  manifest $man"
	# The layout names the image by its tag; --base-name makes it $IMAGE.
	ok "${CTR[@]}" images import --base-name "${IMAGE%:*}" "$T/image.tar"
	ok "${CTR[@]}" images ls
	expect_out "^${IMAGE}[[:space:]].*$man"
	ok "${CTR[@]}" images check
	expect_out "complete"
}

s_foreground_exit() {
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" fg1 sh -c 'echo hello from pid $$; echo to stderr >&2; exit 7'
	expect_rc 7
	expect_out '^hello from pid 1$'
	expect_out '^to stderr$'
	# --rm removed the container and the runtime's state.
	ok "${CTR[@]}" container ls -q
	expect_no_out '^fg1$'
	[ ! -e "$BROOT/$NS/fg1" ] || { say "  runtime state $BROOT/$NS/fg1 left"; return 1; }
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" fg0 true
	expect_rc 0
	# stdin reaches the process (ctr run without -t copies it to a fifo).
	say "+ echo berth-stdin | ${CTR[*]} run --rm ${RUN_OPTS[*]} $IMAGE fg2 sh -c 'read -r l; echo \"read <\$l>\"'"
	set +e
	echo berth-stdin | timeout "$STEP_TIMEOUT" "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" fg2 sh -c 'read -r l; echo "read <$l>"' >"$OUT" 2>&1
	RC=$?
	set -e
	sed 's/^/  | /' "$OUT"
	say "  (exit $RC)"
	expect_rc 0
	expect_out '^read <berth-stdin>$'
}

s_detached() {
	# sh as PID 1 ignores SIGTERM unless it traps it: exit 42 on TERM.
	ok "${CTR[@]}" run -d "${RUN_OPTS[@]}" "$IMAGE" d1 sh -c 'trap "exit 42" TERM; while :; do sleep 1; done'
	wait_status d1 RUNNING
	ok "${CTR[@]}" task ls
	# The runtime options (a protobuf: BinaryName, Root) name the runtime.
	say "+ ${CTR[*]} container info d1 | jq -r .Runtime.Options.value | base64 -d"
	"${CTR[@]}" container info d1 | jq -r .Runtime.Options.value | base64 -d | tr -c '[:print:]' ' ' >"$OUT"
	sed 's/^/  | /' "$OUT"; echo
	expect_fixed "$BERTH"
	expect_fixed "$BROOT"
	expect_runtime_status d1 running
	local pid rpid ppid
	pid=$(task_pid d1)
	rpid=$(runtime_state d1 | jq -r .pid)
	[ "$rpid" = "$pid" ] || { say "  runtime state pid $rpid != ctr pid $pid"; return 1; }
	# The shim (the runtime's parent during create) reaped it and adopted the init.
	ppid=$(ps -o ppid= -p "$pid" | tr -d ' ')
	say "  init $pid ($(cmdline "$pid")), parent $ppid: $(ps -o args= -p "$ppid")"
	[[ $(ps -o args= -p "$ppid") =~ containerd-shim-runc-v2\ .*-id\ d1\  ]] || { say "  init's parent is not d1's shim"; return 1; }
	[[ $(cmdline "$pid") == "sh -c trap"* ]] || { say "  pid $pid is not the container's sh"; return 1; }
}

s_exec() {
	x "${CTR[@]}" task exec "${FIFO[@]}" --exec-id e1 d1 sh -c 'echo exec as uid $(id -u); exit 3'
	expect_rc 3
	expect_out '^exec as uid 0$'
	# An exec sees the container's PID namespace: PID 1 is the init's sh.
	x "${CTR[@]}" task exec "${FIFO[@]}" --exec-id e2 d1 sh -c 'cat /proc/1/cmdline | tr "\0" " "; echo'
	expect_rc 0
	expect_out '^sh -c trap'
	# The cwd of an exec.
	x "${CTR[@]}" task exec "${FIFO[@]}" --exec-id e3 --cwd /tmp d1 sh -c 'echo "cwd $PWD"'
	expect_rc 0
	expect_out '^cwd /tmp$'
	# A detached exec, seen by ps, then killed through ctr.
	ok "${CTR[@]}" task exec "${FIFO[@]}" -d --exec-id e4 d1 sleep 1000
	ok "${CTR[@]}" task ps d1
	local p e4=
	for p in $(awk '$1 ~ /^[0-9]+$/ {print $1}' "$OUT"); do
		[ "$(cmdline "$p")" = "sleep 1000" ] && e4=$p
	done
	[ -n "$e4" ] || { say "  no 'sleep 1000' (exec e4) in task ps"; return 1; }
	say "  exec e4 is pid $e4"
	ok "${CTR[@]}" task kill --exec-id e4 -s SIGKILL d1
	for _ in $(seq 100); do [ "$(cmdline "$e4")" = "sleep 1000" ] || break; sleep 0.1; done
	[ "$(cmdline "$e4")" != "sleep 1000" ] || { say "  exec e4 ($e4) still running after SIGKILL"; return 1; }
	say "  exec e4 is gone"
	# A duplicate exec id is refused.
	ok "${CTR[@]}" task exec "${FIFO[@]}" -d --exec-id e5 d1 sleep 1000
	x "${CTR[@]}" task exec "${FIFO[@]}" -d --exec-id e5 d1 true
	[ "$RC" != 0 ] || { say "  duplicate exec id accepted"; return 1; }
	expect_out 'already exists'
	ok "${CTR[@]}" task kill --exec-id e5 -s SIGKILL d1
	# A failing exec: its binary does not exist; the runtime's error reaches ctr.
	x "${CTR[@]}" task exec "${FIFO[@]}" --exec-id e6 d1 /no/such/exec-binary
	[ "$RC" != 0 ] || { say "  exec of a missing binary succeeded"; return 1; }
	expect_out 'OCI runtime exec failed'
	expect_out 'stat /no/such/exec-binary: no such file or directory'
	# An invalid process.json (a relative cwd) is refused.
	x "${CTR[@]}" task exec "${FIFO[@]}" --exec-id e7 --cwd relative d1 true
	[ "$RC" != 0 ] || { say "  exec with a relative cwd succeeded"; return 1; }
	expect_out 'OCI runtime exec failed'
	# The container is unharmed.
	wait_status d1 RUNNING
}

s_ps() {
	local pid
	pid=$(task_pid d1)
	ok "${CTR[@]}" task ps d1
	expect_out "^${pid}[[:space:]]"
	# The runtime's ps directly, as the shim runs it: the same init pid.
	ok "$BERTH" --root "$BROOT/$NS" ps --format json d1
	jq -e --argjson p "$pid" 'index($p) != null' "$OUT" >/dev/null ||
		{ say "  pid $pid not in the JSON array"; return 1; }
}

s_pause_resume() {
	local pid f
	pid=$(task_pid d1)
	ok "${CTR[@]}" task pause d1
	wait_status d1 PAUSED
	expect_runtime_status d1 paused
	# The freezer of the container's cgroup (/$NS/d1): v1, or v2's cgroup.freeze.
	if [ -e "/sys/fs/cgroup/freezer/$NS/d1/freezer.state" ]; then
		f=$(cat "/sys/fs/cgroup/freezer/$NS/d1/freezer.state")
		say "  freezer.state: $f"
		[ "$f" = FROZEN ] || { say "  expected FROZEN"; return 1; }
	else
		f=$(cat "/sys/fs/cgroup/$NS/d1/cgroup.freeze")
		say "  cgroup.freeze: $f"
		[ "$f" = 1 ] || { say "  expected 1"; return 1; }
	fi
	ok "${CTR[@]}" task resume d1
	wait_status d1 RUNNING
	expect_runtime_status d1 running
	x "${CTR[@]}" task exec "${FIFO[@]}" --exec-id after-resume d1 echo resumed
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
	[ ! -e "$BROOT/$NS/d1" ] || { say "  runtime state $BROOT/$NS/d1 left after task delete"; return 1; }
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
	wait_status k2 RUNNING
	ok "${CTR[@]}" task delete -f k2
	ok "${CTR[@]}" container delete k2
	[ ! -e "$BROOT/$NS/k2" ] || { say "  runtime state $BROOT/$NS/k2 left"; return 1; }
}

s_tty() {
	# script gives ctr a terminal; ctr -t asks for one in the container.
	# The process prints, then waits for typed lines (see tty_x).
	tty_x "${CTR[*]} run -t --rm ${RUN_OPTS[*]} $IMAGE t1 sh -c 'tty; test -t 0 && echo stdin-is-a-tty; read -r l; echo \"got <\$l>\"; read -r l; exit 5'" \
		'stdin-is-a-tty' berth-tty-input \
		'^got <berth-tty-input>$' bye
	expect_rc 5
	expect_out '^/dev/pts/[0-9]+$'
	expect_out '^stdin-is-a-tty$'
	expect_out '^got <berth-tty-input>$'
	ok "${CTR[@]}" container ls -q
	expect_no_out '^t1$'
	# And an exec with a terminal in a detached container.
	ok "${CTR[@]}" run -d "${RUN_OPTS[@]}" "$IMAGE" t2 sleep 1000
	wait_status t2 RUNNING
	tty_x "${CTR[*]} task exec -t ${FIFO[*]} --exec-id te t2 sh -c 'tty; read -r l; echo \"got <\$l>\"; read -r l; exit 4'" \
		'/dev/pts/[0-9]+' berth-exec-input \
		'^got <berth-exec-input>$' bye
	expect_rc 4
	expect_out '^/dev/pts/[0-9]+$'
	expect_out '^got <berth-exec-input>$'
	ok "${CTR[@]}" task kill -s SIGKILL t2
	wait_status t2 STOPPED
	ok "${CTR[@]}" task delete t2
	ok "${CTR[@]}" container delete t2
}

# A runtime wrapper that keeps a copy of the shim's --log file (the bundle's
# log.json, gone with the bundle) after every call, in $T/logs/<id>.json.
log_keeper() {
	local W=$T/log-keeper
	mkdir -p "$T/logs"
	cat >"$W" <<EOF
#!/bin/sh
log= prev=
for a in "\$@"; do [ "\$prev" = --log ] && log=\$a; prev=\$a; done
"$BERTH" "\$@"
rc=\$?
[ -z "\$log" ] || [ ! -f "\$log" ] || cp "\$log" "$T/logs/\$(basename "\$(dirname "\$log")").json"
exit \$rc
EOF
	chmod +x "$W"
	echo "$W"
}

# json_log FILE: every line of a runtime's --log-format json log is a JSON
# object with a string level, msg and time (logrus's JSON formatter).
json_log() {
	local n good
	n=$(grep -c . "$1" || true)
	good=$(jq -R 'fromjson? | objects | select((.level|type) == "string" and (.msg|type) == "string" and (.time|type) == "string")' "$1" | jq -s length)
	say "  $1: $n lines, $good of them JSON with level, msg and time"
	[ "$good" = "$n" ] || { say "  log is not all JSON lines"; return 1; }
}

s_create_error() {
	# The args name a binary that is not in the image: the runtime's create
	# fails; the shim reads its JSON log (--log <bundle>/log.json
	# --log-format json) and ctr must show the last error's msg.
	local W msg
	W=$(log_keeper)
	x "${CTR[@]}" run --rm --runc-binary "$W" --runc-root "$BROOT" "${FIFO[@]}" "$IMAGE" bad1 /no/such/binary
	[ "$RC" != 0 ] || { say "  run of a missing binary succeeded"; return 1; }
	say "+ cat log.json (kept by the wrapper)"
	sed 's/^/  | /' "$T/logs/bad1.json"
	json_log "$T/logs/bad1.json"
	msg=$(jq -r 'select(.level == "error") | .msg' "$T/logs/bad1.json" | tail -n 1)
	[ -n "$msg" ] || { say "  no error in log.json"; return 1; }
	expect_fixed "OCI runtime create failed: $msg"
	expect_fixed 'stat /no/such/binary: no such file or directory'
	# ctr run --rm removed the container; nothing is left in the runtime's root.
	ok "${CTR[@]}" container ls -q
	expect_no_out '^bad1$'
	[ ! -e "$BROOT/$NS/bad1" ] || { say "  runtime state $BROOT/$NS/bad1 left"; return 1; }
}

s_berth_wording() {
	# berth's own error text, as ctr shows it. Another runtime words these
	# differently (or accepts what berth refuses): then the commands run and
	# their output is shown, unchecked, and the step is a SKIP.
	local check=1
	[ $IS_BERTH = 1 ] || { check=0; say "  ($BERTH is not berth: output shown, not checked)"; }
	words() { [ $check = 0 ] || expect_fixed "$1"; }
	fails() { [ $check = 0 ] || [ "$RC" != 0 ] || { say "  expected a failure"; return 1; }; }
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" bad1 /no/such/binary
	fails
	# runc's prefix, "<program> create failed:", with the name berth was run by.
	words "OCI runtime create failed: $(basename "$BERTH") create failed: unable to start container process"
	words 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory'
	# Invalid spec options, rejected by berth's bundle validation, which
	# names the field.
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" --cwd relative/dir "$IMAGE" bad2 true
	fails
	words 'OCI runtime create failed'
	words 'config.json: process.cwd: "relative/dir" is not absolute'
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" --rootfs-propagation bogus "$IMAGE" bad3 true
	fails
	words 'OCI runtime create failed'
	words 'rootfsPropagation=bogus is not supported'
	x "${CTR[@]}" run --rm "${RUN_OPTS[@]}" --cap-add CAP_BERTH_BOGUS "$IMAGE" bad4 true
	fails
	words 'OCI runtime create failed'
	words 'unknown capability "CAP_BERTH_BOGUS"'
	# An exec's process.json with a relative cwd.
	ok "${CTR[@]}" run -d "${RUN_OPTS[@]}" "$IMAGE" bw sleep 1000
	wait_status bw RUNNING
	x "${CTR[@]}" task exec "${FIFO[@]}" --exec-id bad-cwd --cwd relative bw true
	[ "$RC" != 0 ] || { say "  exec with a relative cwd succeeded"; return 1; }
	words 'OCI runtime exec failed'
	words 'cwd: "relative" is not absolute'
	ok "${CTR[@]}" task kill -s SIGKILL bw
	wait_status bw STOPPED
	ok "${CTR[@]}" task delete bw
	ok "${CTR[@]}" container delete bw
	ok "${CTR[@]}" container ls -q
	expect_no_out '^(bad[0-9]|bw)$'
	for id in bad1 bad2 bad3 bad4 bw; do
		[ ! -e "$BROOT/$NS/$id" ] || { say "  runtime state $BROOT/$NS/$id left"; return 1; }
	done
	[ $check = 1 ] || return $SKIPPED
}

s_invocation() {
	# A wrapper records the shim's (go-runc's) command lines, then execs the runtime.
	local W=$T/runtime-wrapper CALLS=$T/calls.log B
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>%s\nexec %s "$@"\n' "$CALLS" "$BERTH" >"$W"
	chmod +x "$W"
	: >"$CALLS"
	ok "${CTR[@]}" run -d --runc-binary "$W" --runc-root "$BROOT" "${FIFO[@]}" "$IMAGE" w1 sleep 1000
	wait_status w1 RUNNING
	B=$T/state/io.containerd.runtime.v2.task/$NS/w1
	ok "${CTR[@]}" task exec "${FIFO[@]}" --exec-id wx w1 true
	ok "${CTR[@]}" task pause w1
	ok "${CTR[@]}" task resume w1
	ok "${CTR[@]}" task ps w1
	# Whatever the runtime logged (nothing, when all went well) is JSON.
	say "+ cat $B/log.json"
	sed 's/^/  | /' "$B/log.json"
	json_log "$B/log.json"
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
	expect_out 'exit code 3'
	ok "${CTR[@]}" container delete ka
	[ "$rc" = 0 ] || { say "  kill --all of a stopped task failed (runc 1.5 exits 0)"; return 1; }
}

s_cleanup_state() {
	ok "${CTR[@]}" task ls -q
	[ ! -s "$OUT" ] || { say "  tasks left"; return 1; }
	ok "${CTR[@]}" container ls -q
	[ ! -s "$OUT" ] || { say "  containers left"; return 1; }
	ok "$BERTH" --root "$BROOT/$NS" list -q
	[ ! -s "$OUT" ] || { say "  runtime list not empty"; return 1; }
	leftovers
}

step "import busybox image (OCI layout built from bundles/out/busybox/rootfs)" s_image
step "foreground run: exit code (sh -c 'exit 7' -> 7), stdout, stderr, stdin" s_foreground_exit
step "detached run (-d), the runtime's state agrees" s_detached
step "task exec (--exec-id): exit code, output, detached exec, errors" s_exec
step "task ps" s_ps
step "task pause / resume" s_pause_resume
step "task kill, exit status, task delete, container delete" s_kill_wait_delete
step "pseudo-terminal (-t) run and exec" s_tty
step "failing create: ctr shows the error from the runtime's log.json" s_create_error
step "berth's own error wording reaches ctr" s_berth_wording
step "shim invokes the runtime with runc's CLI; log.json is JSON" s_invocation
step "task kill --all of a stopped task (runc ignores not-running)" s_kill_all_stopped
step "nothing left in containerd or the runtime's root" s_cleanup_state

hr
say "== summary (containerd $(containerd --version | awk '{print $3}'), runtime $BERTH)"
printf '  %s\n' "${RESULTS[@]}"
say "containerd: $PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" = 0 ]
