#!/usr/bin/env bash
# berth's tests on a fresh Debian 12 machine, as root: install what is needed,
# then gofmt/vet, unit tests and the integration tests with real containers.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=$(bash scripts/setup.sh)
export PATH="$(dirname "$GO"):$PATH"
# setup.sh has installed every tool the tests drive: a test that finds one
# missing fails here instead of skipping (internal/testenv).
export CI="${CI:-true}"
make test
