#!/usr/bin/env bash
# Production smoke test: the README's recipe, run for real and driven over HTTP.
#   APP_CONFIG=production on PostgreSQL + Redis + S3 (moto's server), gunicorn with 2 workers
#   (gunicorn.conf.py), a default-queue worker, a render worker and beat, started as deploy/*.service do;
#   one package goes from script to approval to rendered video (scripts/smoke_driver.py); /healthz,
#   /readyz and /metrics answer; then every main process gets one SIGTERM (systemd's KillMode=mixed)
#   and the stack must be gone within STOP_LIMIT seconds, with no process left and no render half-written.
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379.
# Environment: SMOKE_REDIS_DB (default 12), SMOKE_PG_DB (default advisor_smoke_<time>_<pid>, dropped after).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
started_at=$SECONDS
STOP_LIMIT="${STOP_LIMIT:-45}"
REDIS_DB="${SMOKE_REDIS_DB:-12}"
PG_DB="${SMOKE_PG_DB:-advisor_smoke_$(date +%s)_$$}"
work="$(mktemp -d)"
pids=()

log() { printf 'smoke [%3ds]: %s\n' "$((SECONDS - started_at))" "$*"; }
free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cleanup() {
  local rc=$?
  for pid in "${pids[@]}" ${moto_pid:-}; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Bounded: DROP DATABASE waits for a checkpoint, which a busy shared server may take long to finish.
  timeout 60 psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS ${PG_DB}" >/dev/null 2>&1 \
    || echo "smoke: could not drop database ${PG_DB} within 60 s; drop it later" >&2
  redis-cli -h 127.0.0.1 -n "$REDIS_DB" flushdb >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ]; then
    for f in "$work"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# --- services ---------------------------------------------------------------------------------
S3_PORT="$(free_port)"
setsid "$BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$work/moto.log" 2>&1 &
moto_pid=$!
psql -h 127.0.0.1 -U postgres -q -c "CREATE DATABASE ${PG_DB}" >/dev/null
redis-cli -h 127.0.0.1 -n "$REDIS_DB" flushdb >/dev/null
for _ in $(seq 60); do curl -s -o /dev/null "http://127.0.0.1:${S3_PORT}" && break; sleep 0.25; done

# --- the environment of deploy/advisor-studio.env.example, with throw-away secrets ------------
WEB_PORT="$(free_port)"
secret() { "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
export APP_CONFIG=production
export SECRET_KEY="$(secret)" CONVERSION_WEBHOOK_SECRET="$(secret)" METRICS_TOKEN="$(secret)"
export AUDIT_SIGNING_KEY="$("$BIN/python" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/${PG_DB}"
export CELERY_BROKER_URL="redis://127.0.0.1:6379/${REDIS_DB}" RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/${REDIS_DB}"
export STORAGE_BACKEND=s3 S3_BUCKET="smoke-$$" S3_ENDPOINT_URL="http://127.0.0.1:${S3_PORT}" S3_CREATE_BUCKET=1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing S3_REGION=us-east-1
export PUBLIC_BASE_URL="http://127.0.0.1:${WEB_PORT}" INSTANCE_PATH="$work/instance"
export PROMETHEUS_MULTIPROC_DIR="$work/metrics" LOG_FORMAT=json TRUSTED_PROXY_COUNT=0
export WEB_CONCURRENCY=2 BIND="127.0.0.1:${WEB_PORT}"
mkdir -p "$INSTANCE_PATH" "$PROMETHEUS_MULTIPROC_DIR"
FLASK=("$BIN/flask" --app wsgi)

log "migrate and set up (as an operator would)"
"${FLASK[@]}" db upgrade >"$work/setup.log" 2>&1
"${FLASK[@]}" lexicon import advisor_studio/compliance/default_lexicon.csv --note "smoke" >>"$work/setup.log" 2>&1
ADVISOR_PW="$(secret)" OFFICER_PW="$(secret)"
"${FLASK[@]}" users create --email advisor@smoke.example.com --password "$ADVISOR_PW" --role advisor \
  --name 王晓明 --sac-number S0000000000017 >>"$work/setup.log" 2>&1
"${FLASK[@]}" users create --email officer@smoke.example.com --password "$OFFICER_PW" --role compliance \
  --name 李合规 >>"$work/setup.log" 2>&1
"${FLASK[@]}" partners create --name 星河MCN --channel douyin:@xinghe_smoke >>"$work/setup.log" 2>&1

# --- the processes of deploy/*.service (each in its own session, as each unit is its own cgroup) ---
start() {  # name, command...
  local name=$1; shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  log "started $name (pid $!)"
}
start web "$BIN/gunicorn" -c gunicorn.conf.py wsgi:app
start worker "$BIN/celery" -A wsgi:celery_app worker --queues default --concurrency 2 --hostname default@%h \
  --without-gossip --without-mingle
REMAP_SIGTERM=SIGQUIT WORKER_SOFT_SHUTDOWN_SECONDS=10 \
  start render "$BIN/celery" -A wsgi:celery_app worker --queues render --concurrency 1 --prefetch-multiplier 1 \
  --hostname render@%h --without-gossip --without-mingle
start beat "$BIN/celery" -A wsgi:celery_app beat --schedule "$INSTANCE_PATH/celerybeat-schedule"

base="http://127.0.0.1:${WEB_PORT}"
for _ in $(seq 120); do curl -s -o /dev/null "$base/healthz" && break; sleep 0.25; done
for _ in $(seq 120); do grep -q "ready" "$work/render.log" && grep -q "ready" "$work/worker.log" && break; sleep 0.25; done
health="$(curl -s -w ' %{http_code}' "$base/healthz")"
log "healthz: $health"
[[ "$health" == *'"broker":"ok"'*' 200' ]] || { echo "healthz is not ok"; exit 1; }
ready="$(curl -s -w ' %{http_code}' "$base/readyz")"
log "readyz: $ready"
[[ "$ready" == *' 200' ]] || { echo "readyz is not 200"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/metrics")" = 401 ] || { echo "/metrics without token"; exit 1; }

log "drive one package from script to approval to rendered video over HTTP"
"$BIN/python" -c "from advisor_studio.video.probe import ffmpeg_exe; print(ffmpeg_exe())" >"$work/ffmpeg"
"$(cat "$work/ffmpeg")" -v error -y -f lavfi -i testsrc2=size=360x640:rate=25:duration=3 \
  -f lavfi -i sine=frequency=330:duration=3 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest \
  "$work/clip.mp4"
SMOKE_ADVISOR_EMAIL=advisor@smoke.example.com SMOKE_ADVISOR_PASSWORD="$ADVISOR_PW" SMOKE_ADVISOR_NAME=王晓明 \
SMOKE_ADVISOR_SAC=S0000000000017 SMOKE_OFFICER_EMAIL=officer@smoke.example.com SMOKE_OFFICER_PASSWORD="$OFFICER_PW" \
  "$BIN/python" scripts/smoke_driver.py "$base" "$work/clip.mp4" | tee "$work/driver.log"

metrics="$(curl -s -H "Authorization: Bearer ${METRICS_TOKEN}" "$base/metrics")"
for needle in 'advisor_studio_renditions{status="ready"} 1.0' 'advisor_studio_http_requests_total{endpoint="video.upload"' \
              'advisor_studio_render_duration_seconds_count 1.0' 'advisor_studio_audit_entries_written_total'; do
  grep -qF "$needle" <<<"$metrics" || { echo "metrics lack: $needle"; exit 1; }
done
log "metrics: requests, render duration and audit entries from web and worker processes"
grep -q '"request_id"' "$work/web.log" || { echo "web log lines are not JSON with request ids"; exit 1; }

# --- stop as systemd does with KillMode=mixed: one TERM to each main process -------------------
members() { for pid in "${pids[@]}"; do pgrep -g "$pid" || true; done; }
before="$(members | wc -l)"
log "SIGTERM to ${#pids[@]} main processes ($before processes in their groups)"
stop_at=$SECONDS
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
while [ -n "$(members)" ] && [ $((SECONDS - stop_at)) -lt "$STOP_LIMIT" ]; do sleep 0.2; done
left="$(members | tr '\n' ' ')"
if [ -n "$left" ]; then
  echo "still running ${STOP_LIMIT}s after SIGTERM: $left"; ps -o pid,pgid,stat,cmd -p ${left// /,} || true; exit 1
fi
wait "${pids[@]}" 2>/dev/null || true
log "all processes gone $((SECONDS - stop_at))s after SIGTERM"
for name in web worker render beat; do
  if grep -E '"level": "(ERROR|CRITICAL)"' "$work/$name.log" | grep -v 'advisor_studio.access' >/dev/null; then
    echo "errors in $name.log:"; grep -E '"level": "(ERROR|CRITICAL)"' "$work/$name.log" | head -5; exit 1
  fi
done

# --- nothing half-written: every rendition finished, its stored bytes match its recorded hash -----
"$BIN/python" - <<'PY'
import sqlalchemy as sa
from advisor_studio import create_app, storage
from advisor_studio.extensions import db
from advisor_studio.video.models import Rendition

app = create_app()
with app.app_context():
    rows = db.session.scalars(sa.select(Rendition)).all()
    assert rows, "no rendition at all"
    store = storage.get_storage()
    for r in rows:
        assert r.status == "ready", (r.id, r.status)
        assert r.storage_key and store.sha256_of(r.storage_key) == r.sha256, (r.id, "stored bytes differ")
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert not uploads, f"unfinished multipart uploads: {uploads}"
    print(f"smoke: {len(rows)} rendition(s) ready and hash-true; no unfinished upload in the bucket")
PY
log "passed in $((SECONDS - started_at))s"
