#!/usr/bin/env bash
# berth's main job on a fresh Debian 12 machine, as root: install what is
# needed, build berth, berth-net and the bundles, then run busybox httpd in a
# bridge-networked container with port 8080 published, fetch its page
# through the port map, print it and clean everything up.
#
# It runs inside a network namespace of its own ("a fresh host"), so the
# machine's own firewall, routes and sysctls are left as they are; pass
# --host to run on the machine's real network instead.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=$(bash scripts/setup.sh)
export PATH="$(dirname "$GO"):$PATH"
make -s build >/dev/null
make -s bundles >/dev/null
exec bash scripts/httpd-demo.sh "$@"
