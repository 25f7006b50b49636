"""The periodic re-verification of every live approved file, the integrity page and /healthz."""

from __future__ import annotations

import os

import sqlalchemy as sa

from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from advisor_studio.integrity import tasks
from advisor_studio.integrity.models import IntegrityAlert, IntegrityRun
from tests.conftest import csrf_from, post_form, signed_in
from tests.integrity.conftest import approved_package, package_state, tamper


def run_now(app, officer_client) -> int:
    """Press "verify now" as an officer, then run the queued task the way a worker would."""
    resp = post_form(officer_client, "/compliance/integrity/verify", {}, form_page="/compliance/integrity")
    assert resp.status_code == 302
    with app.app_context():
        run_id = db.session.scalars(sa.select(IntegrityRun.id).order_by(IntegrityRun.id.desc())).first()
        tasks.verify_stored_files.run(run_id)
        db.session.remove()
    return run_id


def test_periodic_task_finds_a_tampered_file_and_records_progress(storage_app, people):
    good = approved_package(storage_app, people, os.urandom(2000))
    bad = approved_package(storage_app, people, os.urandom(2000))
    tamper(storage_app, bad.key)
    officer = signed_in(storage_app, people["compliance"])

    run_id = run_now(storage_app, officer)

    with storage_app.app_context():
        run = db.session.get(IntegrityRun, run_id)
        assert (run.status, run.total, run.checked, run.failures) == ("finished", 4, 4, 1)
        assert run.started_at is not None and run.finished_at is not None
        alert = db.session.scalars(sa.select(IntegrityAlert)).one()
        assert (alert.package_id, alert.file_kind, alert.detected_by, alert.run_id) == (
            bad.package_id, "video", "scheduled", run_id)
        actions = list(db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("integrity.%"))
                                .order_by(AuditEntry.seq)))
    assert actions == ["integrity.run_requested", "integrity.alert_raised", "integrity.run_finished"]
    assert package_state(storage_app, bad.package_id).live is False
    assert package_state(storage_app, good.package_id).live is True

    page = officer.get("/compliance/integrity").get_data(as_text=True)
    assert 'data-testid="integrity-alert"' in page and 'data-open="1"' in page
    assert 'data-status="finished"' in page and "4 / 4" in page


def test_beat_runs_without_a_run_id_and_creates_its_own_run(storage_app, people):
    approved_package(storage_app, people, os.urandom(500))

    with storage_app.app_context():
        run_id = tasks.verify_stored_files.run()
        run = db.session.get(IntegrityRun, run_id)
        assert (run.status, run.total, run.checked, run.failures) == ("finished", 2, 2, 0)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IntegrityAlert)) == 0
    assert "verify-stored-files" in storage_app.extensions["celery"].conf.beat_schedule


def test_verify_now_needs_a_csrf_token(storage_app, people):
    officer = signed_in(storage_app, people["compliance"])

    resp = officer.post("/compliance/integrity/verify", data={})

    assert resp.status_code == 400
    with storage_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IntegrityRun)) == 0


def test_queued_run_shows_live_progress_and_a_second_press_reuses_it(storage_app, people):
    officer = signed_in(storage_app, people["compliance"])
    for _ in range(2):
        post_form(officer, "/compliance/integrity/verify", {}, form_page="/compliance/integrity")

    page = officer.get("/compliance/integrity").get_data(as_text=True)

    assert 'data-reload-after="5"' in page
    with storage_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IntegrityRun)) == 1


def test_alert_is_resolved_only_once_the_file_matches_again(storage_app, people):
    from advisor_studio import storage

    pkg = approved_package(storage_app, people, os.urandom(1000))
    tamper(storage_app, pkg.key)
    officer = signed_in(storage_app, people["compliance"])
    run_now(storage_app, officer)
    with storage_app.app_context():
        alert_id = db.session.scalars(sa.select(IntegrityAlert.id)).one()
    assert storage_app.test_client().get("/healthz").get_json()["integrity"] == "alert"

    page = officer.get("/compliance/integrity").get_data(as_text=True)
    officer.post(f"/compliance/integrity/alerts/{alert_id}/resolve",
                 data={"note": "已从备份恢复", "csrf_token": csrf_from(page)})
    with storage_app.app_context():
        assert db.session.get(IntegrityAlert, alert_id).resolved_at is None  # still tampered

    tamper(storage_app, pkg.key)  # flipping the same bit back restores the approved bytes
    with storage_app.app_context():
        assert storage.get_storage().sha256_of(pkg.key) == pkg.sha256
    officer.post(f"/compliance/integrity/alerts/{alert_id}/resolve",
                 data={"note": "已从备份恢复", "csrf_token": csrf_from(page)})

    with storage_app.app_context():
        alert = db.session.get(IntegrityAlert, alert_id)
        assert alert.resolved_at is not None and alert.resolved_by_id == people["compliance"].id
    health = storage_app.test_client().get("/healthz")
    assert health.status_code == 200 and health.get_json()["integrity"] == "ok"


def test_integrity_page_is_for_compliance_only(storage_app, people):
    assert signed_in(storage_app, people["advisor"]).get("/compliance/integrity").status_code == 403
    assert signed_in(storage_app, people["admin"]).get("/compliance/integrity").status_code == 403
    assert signed_in(storage_app, people["compliance"]).get("/compliance/integrity").status_code == 200


def test_other_roles_cannot_start_a_run_or_resolve_an_alert(storage_app, people):
    for role in ("advisor", "admin"):
        client = signed_in(storage_app, people[role])
        token = csrf_from(client.get("/account/password").get_data(as_text=True))
        assert client.post("/compliance/integrity/verify", data={"csrf_token": token}).status_code == 403
        resp = client.post("/compliance/integrity/alerts/1/resolve", data={"csrf_token": token, "note": "x"})
        assert resp.status_code == 403
    with storage_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IntegrityRun)) == 0


def test_cli_verify_exits_1_and_names_the_failures_after_tampering(storage_app, people):
    import json

    pkg = approved_package(storage_app, people, os.urandom(700))
    ok = storage_app.test_cli_runner().invoke(args=["integrity", "verify"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output.strip().splitlines()[-1])["failures"] == 0

    tamper(storage_app, pkg.cover_key, position=1)
    bad = storage_app.test_cli_runner().invoke(args=["integrity", "verify"])

    assert bad.exit_code == 1
    result = json.loads(bad.output.strip().splitlines()[-1])
    assert (result["total"], result["checked"], result["failures"]) == (2, 2, 1)
    assert package_state(storage_app, pkg.package_id).live is False
