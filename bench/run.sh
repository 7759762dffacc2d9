#!/usr/bin/env bash
# make bench: edgeway vs Deno direct vs nginx→Deno, interleaved, bounded, loopback only.
# Environment (see bench/README.md): BENCH_QUICK=1, BENCH_DURATION=10s, BENCH_RUNS=3,
# BENCH_SCENARIOS=hello,echo1k,..., BENCH_K6=1, DENO=..., KEEP_TMP=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export TOOLS_BIN="$ROOT/.tools/bin"
export PATH="$TOOLS_BIN:$PATH:/usr/sbin"
export DENO="${DENO:-$(command -v deno || echo "$ROOT/.tools/node_modules/.bin/deno")}"
export EDGEWAY_BIN="${EDGEWAY_BIN:-$ROOT/bin/edgeway}"

[ -x "$DENO" ] || { echo "bench: Deno not found at $DENO (run: make deno)" >&2; exit 1; }
[ -x "$EDGEWAY_BIN" ] || { echo "bench: $EDGEWAY_BIN missing (run: make build)" >&2; exit 1; }
"$ROOT/bench/install-tools.sh"

. "$ROOT/bench/guard.sh"
guarded_run edgeway-bench "$ROOT/bench/bench.py"
