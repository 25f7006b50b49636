#!/usr/bin/env bash
# Start a Celery worker beside the Flask development server; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# -B embeds the beat scheduler (periodic jobs such as approval expiry); run `celery beat` once in production.
$BIN/celery -A wsgi:celery_app worker -B --queues default,render --concurrency 2 --loglevel INFO &
worker=$!
cleanup() {
  trap - INT TERM EXIT
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
trap cleanup INT TERM EXIT

echo "Advisor Studio on http://127.0.0.1:5000 (Ctrl-C stops the web server and the worker)"
$BIN/flask --app wsgi run --host 127.0.0.1 --port 5000
