#!/usr/bin/env bash
# Development stack: the Flask development server, one Celery worker for both queues and beat.
# Ctrl-C, or one SIGTERM to this script or to its whole process group (what systemd and most
# supervisors send), stops everything within STOP_TIMEOUT seconds:
# - each Celery process runs in its own session, so a group-wide signal never reaches the worker's
#   pool children behind its back (that left the worker waiting on killed children for over a minute);
# - this script then sends one TERM to each main process (a warm shutdown: running tasks finish,
#   unfinished ones stay queued as they are acknowledged late), and after STOP_TIMEOUT kills what is left.
# Beat runs as its own process (as in production) instead of inside the worker (-B).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-5000}"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"

pids=()
start() {
  setsid "$@" &
  pids+=("$!")
}

alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ "$state" != Z* ]]  # exited but not yet reaped counts as gone
}

stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + STOP_TIMEOUT))
  for pid in "${pids[@]}"; do
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  done
  for pid in "${pids[@]}"; do
    # Each child leads its own process group: this reaches its pool processes too.
    if alive "$pid"; then echo "run-dev: $pid did not stop within ${STOP_TIMEOUT}s, killing it" >&2; fi
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

start "$BIN/celery" -A wsgi:celery_app worker --queues default,render --concurrency 2 --loglevel INFO
start "$BIN/celery" -A wsgi:celery_app beat --loglevel INFO
start "$BIN/flask" --app wsgi run --host "$HOST" --port "$PORT"
echo "Advisor Studio on http://${HOST}:${PORT} (Ctrl-C stops the web server, the worker and beat)"
# Whichever process ends first (a crash, or the signal), the others are stopped with it.
wait -n
