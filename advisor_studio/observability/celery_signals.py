"""The request id rides along with every Celery task a request queues, and task runs are measured.

``before_task_publish`` copies the current request id into the message headers (whoever sends it:
``enqueue_after_commit`` after the request's commit, or a plain ``delay``); in the worker
``task_prerun`` puts it back into the context variable the log filter reads, and ``task_postrun``
clears it so the next task of that process does not inherit it.
"""

from __future__ import annotations

import time

from celery import signals

from advisor_studio.observability import metrics
from advisor_studio.observability.requestid import accept_or_new, request_id_var

HEADER = "x_request_id"
_started: dict[str, tuple[float, object]] = {}


@signals.before_task_publish.connect
def _add_request_id(headers=None, **_kwargs):
    rid = request_id_var.get()
    if rid and headers is not None and HEADER not in headers:
        headers[HEADER] = rid


def _task_header(task) -> str | None:
    request = task.request
    value = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    return value if isinstance(value, str) else None


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **_kwargs):
    rid = _task_header(task)
    # A task queued outside any request (beat, CLI) gets its own id, so its lines still group together.
    token = request_id_var.set(accept_or_new(rid))
    _started[task_id] = (time.perf_counter(), token)


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **_kwargs):
    started = _started.pop(task_id, None)
    if started is None:
        return
    begun, token = started
    seconds = time.perf_counter() - begun
    name = getattr(task, "name", "unknown")
    outcome = (state or "unknown").lower()
    metrics.TASK_RUNS.labels(name, outcome).inc()
    metrics.TASK_DURATION.labels(name).observe(seconds)
    if name.startswith(metrics.RENDER_TASK_PREFIX):
        metrics.RENDER_DURATION.observe(seconds)
        if outcome == "failure":
            metrics.RENDER_FAILURES.inc()
    try:
        request_id_var.reset(token)
    except ValueError:  # set in another context (eager calls nest): just clear it
        request_id_var.set(None)


@signals.worker_process_shutdown.connect
def _mark_dead(pid=None, **_kwargs):
    if metrics.multiprocess_dir() and pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


@signals.setup_logging.connect
def _keep_house_logging(**_kwargs):
    """A receiver here stops Celery from installing its own handlers: create_app's JSON one stays."""
