#!/usr/bin/env bash
# make bench: edgeway vs Deno direct vs nginx→Deno, interleaved, bounded, loopback only.
# Environment (see bench/README.md): BENCH_QUICK=1, BENCH_DURATION=10s, BENCH_RUNS=3,
# BENCH_SCENARIOS=hello,echo1k,..., BENCH_K6=1, DENO=..., BENCH_KEEP_TMP=1.
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

BENCH_TMP="$(mktemp -d /tmp/edgeway-bench.XXXXXX)"
export BENCH_TMP
: > "$BENCH_TMP/pids"

PY=""
cleanup() {
  rc=$?
  trap - EXIT INT TERM
  if [ -n "$PY" ] && kill -0 "$PY" 2>/dev/null; then
    kill -TERM "$PY" 2>/dev/null || true   # Python's finally stops its processes
    for _ in $(seq 100); do kill -0 "$PY" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PY" 2>/dev/null || true
  fi
  # Python stops what it started; this catches anything left if it died.
  if [ -s "$BENCH_TMP/pids" ]; then
    while read -r pid; do
      [ -n "$pid" ] || continue
      kill -TERM -- "-$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
    done < "$BENCH_TMP/pids"
    sleep 0.5
    while read -r pid; do
      [ -n "$pid" ] || continue
      kill -KILL -- "-$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
    done < "$BENCH_TMP/pids"
  fi
  if [ "$rc" -eq 0 ] && [ "${BENCH_KEEP_TMP:-0}" != "1" ]; then
    rm -rf "$BENCH_TMP"
  else
    echo "bench: logs kept in $BENCH_TMP" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# In the background so that a TERM/INT to this script runs the trap at once.
python3 "$ROOT/bench/bench.py" &
PY=$!
wait "$PY"
