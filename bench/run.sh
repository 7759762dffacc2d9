#!/usr/bin/env bash
# make bench: edgeway vs Deno direct vs nginx→Deno, interleaved, bounded, loopback only.
# Environment (see bench/README.md): BENCH_QUICK=1, BENCH_DURATION=10s, BENCH_RUNS=3,
# BENCH_SCENARIOS=hello,echo1k,..., BENCH_K6=1, DENO=..., KEEP_TMP=1.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../bench/env.sh" bench
guarded_run edgeway-bench "$ROOT/bench/bench.py"
