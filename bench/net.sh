#!/usr/bin/env bash
# Runs bench/netbench inside a network namespace made for it ("a fresh
# host"), so the machine's own firewall is never touched, then removes it.
#
# berth-net keeps its state under /run/berth/net, and /run is a tmpfs on
# Debian and on every systemd host. Not on every machine: where /run is on
# a disk (ext4 here), each atomic replace of a state file costs about 1 ms
# (ext4 starts writing out a file renamed over another), a few ms a setup.
# So the state goes on a tmpfs made for the run, as a user's /run is;
# BENCH_NET_STATE=disk keeps it in $TMPDIR (/tmp) instead.
# Usage: bench/net.sh [netbench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
ns=berth-bench-$$
bin=$(mktemp -d /tmp/berth-netbench-bin.XXXXXX)
state=$bin/state
mkdir "$state"
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	umount "$state" 2>/dev/null || true
	rm -rf "$bin"
}
trap cleanup EXIT
go build -o "$bin/netbench" ./bench/netbench
if [ "${BENCH_NET_STATE:-tmpfs}" = tmpfs ]; then
	mount -t tmpfs -o size=64m,mode=0700 berth-bench "$state"
fi
echo "berth-net state and stand-in bundles on: $(stat -f -c %T "$state")"
ip netns add "$ns"
nsenter --net="/run/netns/$ns" ip link set lo up
TMPDIR=$state nsenter --net="/run/netns/$ns" "$bin/netbench" -berth-net "$PWD/bin/berth-net" "$@"
