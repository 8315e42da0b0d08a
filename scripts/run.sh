#!/usr/bin/env bash
# Starts the web server (HTTP and WebSocket, config/server.py) and the background worker, and supervises them:
# a worker that exits is restarted after a short backoff; if the web server exits, or on Ctrl-C or TERM,
# everything stops. Needs bash 5.1 or later (`wait -p`).
set -uo pipefail
cd "$(dirname "$0")/.."
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"
RECONCILE_EVERY="${RECONCILE_EVERY:-300}"
# The server and the worker report /metrics together (core/metrics.py), from a directory emptied at each
# start: the figures of an earlier run's processes would add to this one's.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${DATA_DIR:-data}/metrics}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR" && rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
# The worker's restart delay doubles after each quick exit, up to the maximum; a worker that ran a minute resets it.
BACKOFF_FIRST=1
BACKOFF_MAX=30

stop_all() {
  trap - INT TERM EXIT
  # shellcheck disable=SC2046 # one pid per word
  kill -TERM $(jobs -p) 2>/dev/null
  wait
  exit "$1"
}
trap 'stop_all 130' INT
trap 'stop_all 143' TERM
trap 'stop_all $?' EXIT

log() { echo "run.sh: $*" >&2; }

.venv/bin/python -m config.server &
server=$!

# Documents a dead worker left half-ingested go back to the queue, then the worker starts.
# (In the background, so that Ctrl-C is not held up until it ends.)
.venv/bin/python manage.py reconcile_documents &
wait $!

start_worker() {
  # Without the autoreloader: its parent process would exit with a crashed child's status.
  .venv/bin/python manage.py run_worker --interval 1 --no-reload &
  worker=$!
  worker_started=$SECONDS
}
start_worker

# And every few minutes while running, for documents a killed worker left `processing`.
reconcile_loop() {
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  while true; do
    sleep "$RECONCILE_EVERY" &
    nap=$!
    wait "$nap"
    .venv/bin/python manage.py reconcile_documents > /dev/null
  done
}
reconcile_loop &

echo "Bytchat on http://$HOST:$PORT/  (API docs: /api/docs/, admin: /admin/). Ctrl-C stops."
backoff=$BACKOFF_FIRST
while true; do
  wait -n -p exited
  status=$?
  if [[ "${exited:-}" == "$server" ]]; then
    # 0: it was asked to stop (a Ctrl-C reaches it too); anything else is a failure.
    (( status == 0 )) || log "the web server exited (status $status); stopping everything."
    exit "$status"
  elif [[ "${exited:-}" == "$worker" ]]; then
    if (( SECONDS - worker_started >= 60 )); then backoff=$BACKOFF_FIRST; fi
    log "the worker exited (status $status); restarting it in ${backoff}s."
    sleep "$backoff" &
    wait $!
    start_worker
    log "worker restarted (pid $worker)."
    backoff=$(( backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2 ))
  fi
done
