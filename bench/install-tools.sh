#!/usr/bin/env bash
# Idempotent installs of the load tools the benchmarks need.
#   nginx, wrk  : Debian packages (apt-get update runs at most once)
#   vegeta      : built in a scratch Go module into $TOOLS_BIN (the module proxy
#                 refuses `go install` for it, see README)
#   wsbench     : the WebSocket load generator, go build of bench/wsbench
#   k6          : only when BENCH_K6=1 (go install takes ~2 minutes)
# Prints nothing but progress lines on stderr; exits non-zero if a required tool is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="${TOOLS_BIN:-$ROOT/.tools/bin}"
mkdir -p "$TOOLS_BIN"
export PATH="$TOOLS_BIN:$PATH"
log() { echo "[install-tools] $*" >&2; }

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${need_apt[*]} and no apt-get"; exit 1
  fi
  stamp="$ROOT/.tools/.apt-updated"
  if [ ! -e "$stamp" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    touch "$stamp"
  fi
  log "apt-get install -y ${need_apt[*]}"
  # policy-rc.d keeps the nginx service from being started by the package.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

if [ ! -x "$TOOLS_BIN/vegeta" ]; then
  log "building vegeta v12.12.0 into $TOOLS_BIN"
  scratch="$(mktemp -d)"
  (
    cd "$scratch"
    go mod init x >/dev/null 2>&1
    go get github.com/tsenart/vegeta/v12@v12.12.0 >&2
    go build -o "$TOOLS_BIN/vegeta" github.com/tsenart/vegeta/v12
  )
  rm -rf "$scratch"
fi

# wsbench is in this repository: go build every time (cached, ~1 s) so the
# binary always matches bench/wsbench/main.go.
(cd "$ROOT" && go build -o "$TOOLS_BIN/wsbench" ./bench/wsbench) >&2

if [ "${BENCH_K6:-0}" = "1" ] && [ ! -x "$TOOLS_BIN/k6" ]; then
  log "building k6 v1.8.1 into $TOOLS_BIN (about 2 minutes)"
  # Not fatal: bench.py records the k6 runs as failed and runs the rest.
  GOBIN="$TOOLS_BIN" go install go.k6.io/k6@v1.8.1 >&2 || log "k6 build failed; the k6 runs will be reported as failed"
fi

for t in wrk vegeta wsbench; do
  command -v "$t" >/dev/null 2>&1 || { log "$t is still missing"; exit 1; }
done
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { log "nginx is still missing"; exit 1; }
