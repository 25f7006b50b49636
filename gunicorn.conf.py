"""gunicorn settings for Advisor Studio: `gunicorn -c gunicorn.conf.py wsgi:app` (deploy/advisor-web.service).

Everything is read from the environment so one file serves every machine:

- WEB_CONCURRENCY     worker processes (default 2 x cores + 1, at most 8)
- GUNICORN_THREADS    threads per worker (default 4: uploads and downloads are I/O bound)
- BIND                address (default 127.0.0.1:8000; nginx in front, deploy/nginx-advisor-studio.conf)
- GUNICORN_TIMEOUT    seconds a worker may be silent before it is replaced (default 120)
- GRACEFUL_TIMEOUT    seconds a stopping worker gets to finish its requests; default: the largest upload
                      (MAX_UPLOAD_MB) at a slow link (UPLOAD_SLOW_LINK_MB_S, default 1 MB/s = 8 Mbit/s)
                      plus a minute, since nginx streams video uploads through unbuffered
                      (deploy/nginx-advisor-studio.conf). An idle worker still stops at once: the
                      timeout only matters while an upload is in flight.
- PROMETHEUS_MULTIPROC_DIR  folder of the per-process metric files (advisor_studio/observability/metrics.py)

Logging: gunicorn's own lines go through the same JSON formatter as the app's. The access log line is
written by the app (logger ``advisor_studio.access``: request id, user id, endpoint, status, latency,
client network), so gunicorn's access log is off rather than a second, less informed line per request.
"""

import multiprocessing
import os
import sys
import tempfile

# The logging factories below live in the app's package: importable before gunicorn loads the app.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {value!r}") from exc


bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = _int("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 8))
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread"
timeout = _int("GUNICORN_TIMEOUT", 120)
_slow_link = max(float(os.environ.get("UPLOAD_SLOW_LINK_MB_S") or 1.0), 0.01)
graceful_timeout = _int("GRACEFUL_TIMEOUT", max(120, int(_int("MAX_UPLOAD_MB", 2048) / _slow_link) + 60))
keepalive = 5
# Recycle workers now and then (jittered, so they do not all restart together).
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10
# Do not load the app before forking: each worker opens its own database pool and storage client.
preload_app = False
# Client address and scheme come from ProxyFix (TRUSTED_PROXY_COUNT) alone, not from gunicorn as well.
forwarded_allow_ips = "127.0.0.1,::1"
secure_scheme_headers: dict = {}
proxy_protocol = False
limit_request_line = 8190
limit_request_field_size = 8190

accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "advisor_studio.observability.logs.json_formatter"}},
    "filters": {"request_id": {"()": "advisor_studio.observability.logs.RequestIdFilter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"],
                            "stream": "ext://sys.stderr"}},
    # The root logger gets its handler from the app (create_app -> configure_logging), exactly one.
    "root": {"level": loglevel.upper(), "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}

# Metrics in multiprocess mode: each process writes its own files; /metrics sums them. The folder may be
# shared with the Celery units of the machine (deploy/advisor-studio.env.example), so only files of
# processes that no longer exist are removed at start, never those of a running worker.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if not _metrics_dir:
    _metrics_dir = os.path.join(tempfile.gettempdir(), f"advisor-studio-metrics-{os.getuid()}")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
os.makedirs(_metrics_dir, mode=0o700, exist_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server):
    """Remove the metric files of processes that are gone (a previous run's): they would add stale counts."""
    for name in os.listdir(_metrics_dir):
        stem = name.rsplit(".", 1)[0]
        pid = stem.rsplit("_", 1)[-1]
        if name.endswith(".db") and pid.isdigit() and not _pid_alive(int(pid)):
            os.unlink(os.path.join(_metrics_dir, name))


def child_exit(server, worker):
    """A worker that exited no longer reports its gauges (counters and histograms are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
