#!/usr/bin/env bash
# Sourced by bench/run.sh and loadtest/run.sh: paths to the tools, Deno and
# the edgeway binary, checked, and the load tools installed. $1 names the
# caller in error messages.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export TOOLS_BIN="$ROOT/.tools/bin"
export PATH="$TOOLS_BIN:$PATH:/usr/sbin"
export DENO="${DENO:-$(command -v deno || echo "$ROOT/.tools/node_modules/.bin/deno")}"
export EDGEWAY_BIN="${EDGEWAY_BIN:-$ROOT/bin/edgeway}"

[ -x "$DENO" ] || { echo "$1: Deno not found at $DENO (run: make deno)" >&2; exit 1; }
[ -x "$EDGEWAY_BIN" ] || { echo "$1: $EDGEWAY_BIN missing (run: make build)" >&2; exit 1; }
"$ROOT/bench/install-tools.sh"
. "$ROOT/bench/guard.sh"
