# Sourced by bench/run.sh and loadtest/run.sh: runs a Python driver with a
# scratch directory and guarantees that every process it started is killed,
# whatever happens (normal end, error, INT/TERM to the script).
#   guarded_run <prefix> <python script>
# The driver appends the pid (= process group) of everything it starts to
# $GUARD_TMP/pids; the trap TERMs, then KILLs each group and pid.

GUARD_PY=""
GUARD_TMP=""

guard_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$GUARD_PY" ] && kill -0 "$GUARD_PY" 2>/dev/null; then
    kill -TERM "$GUARD_PY" 2>/dev/null || true   # the driver's finally stops its processes
    for _ in $(seq 100); do kill -0 "$GUARD_PY" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GUARD_PY" 2>/dev/null || true
  fi
  if [ -n "$GUARD_TMP" ] && [ -s "$GUARD_TMP/pids" ]; then
    local pid
    while read -r pid; do
      [ -n "$pid" ] || continue
      kill -TERM -- "-$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
    done < "$GUARD_TMP/pids"
    sleep 0.5
    while read -r pid; do
      [ -n "$pid" ] || continue
      kill -KILL -- "-$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
    done < "$GUARD_TMP/pids"
  fi
  if [ -n "$GUARD_TMP" ]; then
    if [ "$rc" -eq 0 ] && [ "${KEEP_TMP:-0}" != "1" ]; then
      rm -rf "$GUARD_TMP"
    else
      echo "logs kept in $GUARD_TMP" >&2
    fi
  fi
  exit "$rc"
}

guarded_run() {
  local prefix="$1" script="$2"
  GUARD_TMP="$(mktemp -d "/tmp/$prefix.XXXXXX")"
  : > "$GUARD_TMP/pids"
  trap guard_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # In the background so that a TERM/INT to the script runs the trap at once.
  GUARD_TMP="$GUARD_TMP" python3 "$script" &
  GUARD_PY=$!
  wait "$GUARD_PY"
}
