#!/usr/bin/env bash
# Runs bench/netbench inside a network namespace made for it ("a fresh
# host"), so the machine's own firewall is never touched, then removes it.
# Usage: bench/net.sh [netbench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
ns=berth-bench-$$
bin=$(mktemp -d /tmp/berth-netbench-bin.XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$bin"; }
trap cleanup EXIT
go build -o "$bin/netbench" ./bench/netbench
ip netns add "$ns"
nsenter --net="/run/netns/$ns" ip link set lo up
nsenter --net="/run/netns/$ns" "$bin/netbench" -berth-net "$PWD/bin/berth-net" "$@"
