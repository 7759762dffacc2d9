#!/usr/bin/env bash
# make loadtest: soak, chaos, reload, flood against edgeway; bounded, loopback only, pass/fail summary.
# Environment (see bench/README.md): LOADTEST_DURATION=20s (e.g. 10m), LOADTEST_RATE,
# LOADTEST_CHAOS_RATE=1000, LOADTEST_TIMEOUT=10s, LOADTEST_ONLY=soak,chaos,reload,flood, KEEP_TMP=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export TOOLS_BIN="$ROOT/.tools/bin"
export PATH="$TOOLS_BIN:$PATH:/usr/sbin"
export DENO="${DENO:-$(command -v deno || echo "$ROOT/.tools/node_modules/.bin/deno")}"
export EDGEWAY_BIN="${EDGEWAY_BIN:-$ROOT/bin/edgeway}"

[ -x "$DENO" ] || { echo "loadtest: Deno not found at $DENO (run: make deno)" >&2; exit 1; }
[ -x "$EDGEWAY_BIN" ] || { echo "loadtest: $EDGEWAY_BIN missing (run: make build)" >&2; exit 1; }
"$ROOT/bench/install-tools.sh"

. "$ROOT/bench/guard.sh"
guarded_run edgeway-loadtest "$ROOT/loadtest/loadtest.py"
