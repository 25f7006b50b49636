"""Prometheus metrics (prometheus-client).

Under gunicorn every worker is its own process, so a counter in one worker's memory would be a
fraction of the truth and vanish with the worker. prometheus-client's multiprocess mode keeps each
process's values in small mmap files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them;
gunicorn.conf.py empties that folder at start and marks exited workers dead. Without the variable
(development server, tests) the metrics live in the process as usual. An exporter library would be
one more process to run and secure for no gain.

Two kinds of figures:
- events counted where they happen (requests, redirects, audit entries, login failures, Celery task
  runs and durations); each costs one in-memory increment, which keeps the redirect hot path cheap;
- states read from the database at scrape time (render queue depth, failed renders, webhook events by
  outcome, conversions): true across every machine and process, and a few grouped COUNTs per scrape.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

PREFIX = "advisor_studio"

HTTP_REQUESTS = Counter(f"{PREFIX}_http_requests", "HTTP requests by endpoint, method and status.",
                        ["endpoint", "method", "status"])
HTTP_LATENCY = Histogram(f"{PREFIX}_http_request_duration_seconds", "Time to answer a request, by endpoint.",
                         ["endpoint"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120))
REDIRECTS = Counter(f"{PREFIX}_referral_redirects", "Referral redirects (/r/<code>) by status.", ["status"])
AUDIT_ENTRIES = Counter(f"{PREFIX}_audit_entries_written", "Audit entries committed, by action.", ["action"])
LOGIN_FAILURES = Counter(f"{PREFIX}_login_failures", "Refused sign-ins, by reason.", ["reason"])
TASK_RUNS = Counter(f"{PREFIX}_celery_tasks", "Celery task runs by task and outcome.", ["task", "outcome"])
TASK_DURATION = Histogram(f"{PREFIX}_celery_task_duration_seconds", "Celery task run time by task.", ["task"],
                          buckets=(0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
RENDER_DURATION = Histogram(f"{PREFIX}_render_duration_seconds", "Render task run time.",
                            buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600))
RENDER_FAILURES = Counter(f"{PREFIX}_render_failures", "Render task runs that raised.")

RENDER_TASK_PREFIX = "advisor_studio.video."
REDIRECT_ENDPOINT = "redirect.follow"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    """The multiprocess folder when running under gunicorn/Celery with one configured."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class DatabaseStateCollector:
    """Gauges read from the database at scrape time (inside the /metrics request's app context)."""

    def collect(self):
        from advisor_studio.extensions import db

        try:
            families = list(self._collect())
        except Exception:  # noqa: BLE001 - the database is down: the process figures still count
            db.session.rollback()
            families = []
        yield from families
        yield GaugeMetricFamily(f"{PREFIX}_database_up", "1 when the scrape could read the database.",
                                value=1 if families else 0)

    def _collect(self):
        import sqlalchemy as sa

        from advisor_studio.distribution.models import WebhookEvent
        from advisor_studio.extensions import db
        from advisor_studio.referrals.models import Conversion
        from advisor_studio.video.models import RENDER_QUEUED, RENDER_RUNNING, Rendition

        renditions = GaugeMetricFamily(f"{PREFIX}_renditions", "Renditions by status (queued+running = queue depth).",
                                       labels=["status"])
        counts = dict(db.session.execute(
            sa.select(Rendition.status, sa.func.count()).group_by(Rendition.status)).all())
        for status, n in sorted(counts.items()):
            renditions.add_metric([status], n)
        yield renditions
        yield GaugeMetricFamily(f"{PREFIX}_render_queue_depth", "Renditions queued or running.",
                                value=counts.get(RENDER_QUEUED, 0) + counts.get(RENDER_RUNNING, 0))
        webhooks = GaugeMetricFamily(f"{PREFIX}_webhook_events", "Partner webhook events by delivery outcome.",
                                     labels=["outcome"])
        for status, n in sorted(db.session.execute(
                sa.select(WebhookEvent.status, sa.func.count()).group_by(WebhookEvent.status)).all()):
            webhooks.add_metric([status], n)
        yield webhooks
        yield GaugeMetricFamily(f"{PREFIX}_conversions", "Conversion events recorded.",
                                value=db.session.scalar(sa.select(sa.func.count()).select_from(Conversion)) or 0)
        from advisor_studio.audit import AuditHead

        yield GaugeMetricFamily(f"{PREFIX}_audit_chain_length", "Entries in the audit chain.",
                                value=db.session.scalar(sa.select(sa.func.max(AuditHead.seq))) or 0)


def render_latest() -> bytes:
    """The exposition text of every metric (all processes in multiprocess mode) plus database states."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
        text = generate_latest(REGISTRY)
        state = CollectorRegistry()
        state.register(DatabaseStateCollector())
        return text + generate_latest(state)
    registry.register(DatabaseStateCollector())
    return generate_latest(registry)


def observe_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    """Count one answered request (a counter only for the referral redirect: its hot path stays cheap)."""
    if endpoint == REDIRECT_ENDPOINT:
        REDIRECTS.labels(str(status)).inc()
        return
    name = endpoint or "unmatched"  # 404s: never the raw path, which anyone can vary without bound
    HTTP_REQUESTS.labels(name, method if method in METHODS else "OTHER", str(status)).inc()
    HTTP_LATENCY.labels(name).observe(seconds)
