#!/usr/bin/env bash
# Starts the ASGI server (and, as issues add them, background workers); Ctrl-C or TERM stops them all.
set -uo pipefail
cd "$(dirname "$0")/.."
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
pids=()

stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  wait
}
trap stop_all INT TERM EXIT

.venv/bin/daphne -b "$HOST" -p "$PORT" --access-log /dev/null \
  --websocket_timeout 3600 --ping-interval 20 --ping-timeout 30 \
  --websocket-max-message-size 262144 --websocket-max-frame-size 262144 \
  --application-close-timeout 10 config.asgi:application &
pids+=($!)

# Documents a dead worker left half-ingested go back to the queue, then the worker starts.
.venv/bin/python manage.py reconcile_documents
.venv/bin/python manage.py db_worker --interval 1 &
pids+=($!)
# And every few minutes while running, for a worker that dies and is restarted meanwhile.
while sleep "${RECONCILE_EVERY:-300}"; do .venv/bin/python manage.py reconcile_documents > /dev/null; done &
pids+=($!)

echo "Bytchat on http://$HOST:$PORT/  (API docs: /api/docs/, admin: /admin/). Ctrl-C stops."
# If any process exits, stop the others too.
wait -n
