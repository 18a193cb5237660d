#!/usr/bin/env bash
# bench/offcpu.sh: where one `run` of /bin/true waits, for berth, runc and
# crun in turn. perf records every context switch with its call graph; the
# offcpu tool prints the longest stretches each runtime's threads spent off
# the CPU, and what they waited in. Not part of `make bench` (perf's own
# overhead would spoil the timings): run it by hand, as root, after
# `make build bundles`.
#
#   sudo bash bench/offcpu.sh [RUNS]    (default 3 runs of each runtime)
#
# What it showed (bench/README.md): every runtime's first write to a v1
# cgroup.procs file waits 5-17 ms for an RCU grace period
# (percpu_down_write of the cgroup threadgroup lock).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
if ! command -v perf >/dev/null; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
fi
for rt in runc crun; do
	command -v "$rt" >/dev/null || { echo "offcpu.sh: $rt not installed (make bench installs it)" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/berth-offcpu.XXXXXX)
# perf mounts tracefs when it is not mounted; leave the host as it was.
tracefs_was_mounted=0
mountpoint -q /sys/kernel/tracing && tracefs_was_mounted=1
cleanup() {
	rm -rf "$tmp"
	if [ "$tracefs_was_mounted" = 0 ] && mountpoint -q /sys/kernel/tracing; then
		umount /sys/kernel/tracing || true
	fi
}
trap cleanup EXIT

# An unstripped berth, so that its frames have names.
go build -trimpath -tags "seccomp urfave_cli_no_docs runc_nocriu" -o "$tmp/berth" ./cmd/berth
go build -o "$tmp/offcpu" ./bench/offcpu

# The lifecycle benchmark's bundle: the busybox rootfs, read-only, running
# /bin/true without a terminal (ociVersion 1.0.2: crun 1.8 knows no later).
mkdir "$tmp/bundle"
rootfs=$(cd bundles/out/busybox/rootfs && pwd)
(cd "$tmp/bundle" && "$tmp/berth" spec)
sed -i -e 's|"terminal": true|"terminal": false|' -e 's|"sh"$|"/bin/true"|' \
	-e "s|\"path\": \"rootfs\"|\"path\": \"$rootfs\"|" \
	-e 's|"ociVersion": "[^"]*"|"ociVersion": "1.0.2"|' "$tmp/bundle/config.json"

# crun 1.8.1 refuses this hybrid host: it runs in a private mount namespace
# without the v2 mount, as in the lifecycle benchmark.
cat >"$tmp/crun.sh" <<'EOF'
mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified
exec crun run -b "$1" "$2"
EOF

trace() { # NAME COMM-REGEXP COMMAND...
	local name=$1 comm=$2
	shift 2
	perf record -q -o "$tmp/$name.data" -e sched:sched_switch -g -a -- "$@" >/dev/null 2>&1
	echo "-- $name"
	perf script -i "$tmp/$name.data" 2>/dev/null | "$tmp/offcpu" -comm "$comm" -top 6
}
for i in $(seq "$runs"); do
	trace "berth-$i" '^berth$|^runc:\[' "$tmp/berth" run -b "$tmp/bundle" "offcpu-berth-$$-$i"
	trace "runc-$i" '^runc' runc run -b "$tmp/bundle" "offcpu-runc-$$-$i"
	trace "crun-$i" '^crun' unshare -m --propagation private sh "$tmp/crun.sh" "$tmp/bundle" "offcpu-crun-$$-$i"
	echo
done
