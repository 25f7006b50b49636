"""The request id travels with the Celery tasks a request queues and shows in the worker's log lines."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from advisor_studio.extensions import db
from advisor_studio.integrity.models import RUN_FINISHED, IntegrityRun
from tests.conftest import post_form, signed_in

REQUEST_ID = "trace-4f2a9c1e-7b3d-request"


def _wait_for_run(app, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            status = db.session.scalar(sa.select(IntegrityRun.status).order_by(IntegrityRun.id.desc()).limit(1))
            db.session.remove()
        if status in (RUN_FINISHED, "failed"):
            return status
        time.sleep(0.3)
    pytest.fail("the integrity run was not picked up by the worker")


def test_task_queued_by_a_request_logs_with_that_request_id(app, users, worker):
    officer = signed_in(app, users["compliance"])
    officer.environ_base["HTTP_X_REQUEST_ID"] = REQUEST_ID
    resp = post_form(officer, "/compliance/integrity/verify", {}, form_page="/compliance/integrity")
    assert resp.status_code == 302 and resp.headers["X-Request-ID"] == REQUEST_ID
    assert _wait_for_run(app) == RUN_FINISHED
    deadline = time.monotonic() + 10
    tagged: list[dict] = []
    while time.monotonic() < deadline and not tagged:
        lines = [json.loads(line) for line in worker.log_path.read_text().splitlines()
                 if line.startswith("{")]
        tagged = [r for r in lines if r.get("request_id") == REQUEST_ID]
        time.sleep(0.2)
    assert tagged, worker.log_path.read_text()[-3000:]
    assert any("verify_stored_files" in r["message"] for r in tagged)
    # Lines of tasks nobody's request queued (the worker's start-up) do not borrow the id.
    assert all(r.get("request_id") != REQUEST_ID for r in lines if "ready" in r["message"].lower())


def test_publish_hook_adds_the_current_request_id_and_only_then():
    from advisor_studio.observability.celery_signals import HEADER, _add_request_id
    from advisor_studio.observability.requestid import request_id_var

    headers: dict = {}
    _add_request_id(headers=headers)
    assert HEADER not in headers  # beat and CLI sends carry none
    token = request_id_var.set("abc-request-0001")
    try:
        _add_request_id(headers=headers)
    finally:
        request_id_var.reset(token)
    assert headers[HEADER] == "abc-request-0001"
