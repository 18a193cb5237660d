#!/usr/bin/env bash
# make bench: installs what berth is compared against (Debian's runc and
# crun; GNU time, for the peak RSS of a command itself), then runs the lifecycle and network benchmarks, printing tables and
# writing JSON into the directory given (default bench/out).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/out}
mkdir -p "$out"
need=()
for p in runc crun containernetworking-plugins iperf3 time; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/lifebench" ./bench/lifebench

echo "== lifecycle"
"$tmp/lifebench" -berth bin/berth -bundle bundles/out/busybox -runs "${BENCH_RUNS:-30}" -json "$out/lifecycle.json"
echo
echo "== network hook: bridge + 2 published ports (tcp, udp), in a test host namespace; then iperf3"
at=${BENCH_NET_AT:-1,100,500}
# A berth-net or floor cycle takes ~50 ms: 100 of them per level cost 5 s
# and steady the medians on a host with noisy neighbours. A CNI cycle at
# #500 takes over a second, so CNI keeps BENCH_RUNS.
net_runs=${BENCH_NET_RUNS:-100}
for fw in nftables iptables; do
	bash bench/net.sh -firewall "$fw" -at "$at" -runs "$net_runs" -throughput 2 -json "$out/net-$fw.json"
done
bash bench/net.sh -tool cni -at "$at" -runs "${BENCH_RUNS:-30}" -json "$out/net-cni.json"
bash bench/net.sh -tool floor -at "$at" -runs "$net_runs" -json "$out/net-floor.json"
