"""A real task through a real Celery worker on whichever broker is configured."""

from __future__ import annotations

import pytest

from advisor_studio import audit
from advisor_studio.core.tasks import verify_audit_chain
from advisor_studio.extensions import db

pytestmark = pytest.mark.worker


def test_worker_runs_a_real_task_against_the_same_database(app, worker):
    with app.app_context():
        for i in range(3):
            audit.record("worker.test", "thing", i, actor="tester")
        db.session.commit()
        async_result = verify_audit_chain.delay()
        try:
            outcome = async_result.get(timeout=90)
        except Exception:
            print(worker.log_path.read_text())
            raise
    assert outcome == {"ok": True, "count": 3, "broken_seq": None, "reason": None, "checkpoints": 0,
                       "anchored_seq": 0}
    assert async_result.status == "SUCCESS"
