#!/usr/bin/env bash
# Runs the httpd bundle with berth, fetches its page through the published
# port and cleans up. See scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=$PWD/bin/berth
BUNDLE=$PWD/bundles/out/httpd
PORT=$(jq -r '.hooks.createRuntime[0].args | index("--publish") as $i | .[$i+1] | split(":")[0]' "$BUNDLE/config.json")
ID=httpd-demo-$$
STATE=$(mktemp -d /tmp/berth-demo.XXXXXX)
export BERTH_NET_ROOT=$STATE/net

run() { "$@"; }
NS=""
if [ "${1:-}" != "--host" ]; then
	NS=berth-demo-$$
	ip netns add "$NS"
	run() { nsenter --net="/run/netns/$NS" "$@"; }
	run ip link set lo up
	echo "# in network namespace $NS (a fresh host; --host for the real one)"
fi
cleanup() {
	run "$BERTH" --root "$STATE/run" delete -f "$ID" >/dev/null 2>&1 || true
	run "$BERTH" network prune >/dev/null 2>&1 || true
	[ -n "$NS" ] && ip netns del "$NS"
	rm -rf "$STATE"
}
trap cleanup EXIT

echo "+ berth run -d -b $BUNDLE $ID"
run "$BERTH" --root "$STATE/run" run -d -b "$BUNDLE" "$ID" </dev/null >/dev/null 2>"$STATE/httpd.log"
ADDR=$(run "$BERTH" network inspect bridge | jq -r --arg id "$ID" '.containers[] | select(.id == $id) | .address')
echo "# container $ID has $ADDR on network bridge; port $PORT on this host maps to its port 80"
# busybox's wget is avoided: the static build crashes resolving names here.
echo "+ printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 $PORT"
for _ in $(seq 50); do
	page=$(printf 'GET / HTTP/1.0\r\n\r\n' | run busybox nc -w 2 127.0.0.1 "$PORT" 2>/dev/null || true)
	if [ -n "$page" ]; then
		echo "$page"
		exit 0
	fi
	sleep 0.1
done
echo "demo: no answer from 127.0.0.1:$PORT" >&2
exit 1
