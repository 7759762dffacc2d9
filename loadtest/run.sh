#!/usr/bin/env bash
# make loadtest: soak, chaos, hostile, reload, flood against edgeway; bounded, loopback only, pass/fail summary.
# Environment (see bench/README.md): LOADTEST_DURATION=20s (e.g. 10m), LOADTEST_RATE,
# LOADTEST_CHAOS_RATE=1000, LOADTEST_TIMEOUT=10s, LOADTEST_ONLY=soak,chaos,hostile,reload,flood, KEEP_TMP=1.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../bench/env.sh" loadtest
guarded_run edgeway-loadtest "$ROOT/loadtest/loadtest.py"
