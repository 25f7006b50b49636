"""Script revisions and approvals are immutable in the database itself (like the audit table): no
DELETE, no UPDATE except the columns that legitimately change, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.studio.models import Package, ScriptRevision
from tests.compliance.test_review_pages import decide, people, submit_package, user  # noqa: F401 - fixture

FORGED = "f" * 64


@pytest.fixture
def approved(app, people):  # noqa: F811 - the fixture imported above
    """(approval id, script revision id) of an approved package."""
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"])
    decide(app, review_id, people["officer2"])
    with app.app_context():
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).one()
        return approval.id, approval.script_revision_id


def _refused(stmt, match: str = "immutable") -> None:
    with pytest.raises(DBAPIError, match=match):
        db.session.execute(stmt)
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize("column,value", [
    ("manifest_sha256", FORGED),
    ("manifest", {"forged": True}),
    ("approved_by_id", None),
    ("expires_at", "later"),
    ("stage", "script"),
    ("package_id", None),
])
def test_database_refuses_update_of_frozen_approval_columns(app, approved, people, column, value):  # noqa: F811
    approval_id, _revision_id = approved
    with app.app_context():
        if column == "approved_by_id":
            value = people["compliance"].id
        elif column == "expires_at":
            value = utcnow() + timedelta(days=3650)
        elif column == "package_id":
            value = None
        _refused(sa.update(Approval).where(Approval.id == approval_id).values({column: value}))
        assert db.session.get(Approval, approval_id).manifest_sha256 != FORGED


def test_database_refuses_delete_of_approvals_and_script_revisions(app, approved):
    approval_id, revision_id = approved
    with app.app_context():
        _refused(sa.delete(Approval).where(Approval.id == approval_id), "never deleted")
        _refused(sa.delete(ScriptRevision).where(ScriptRevision.id == revision_id), "never deleted")
        assert db.session.get(Approval, approval_id) is not None
        assert db.session.get(ScriptRevision, revision_id) is not None


@pytest.mark.parametrize("column,value", [("title", "改过的标题"), ("body", "改过的正文"), ("sha256", FORGED),
                                          ("number", 99), ("caption", "新文案")])
def test_database_refuses_update_of_revision_content(app, approved, column, value):
    _approval_id, revision_id = approved
    with app.app_context():
        _refused(sa.update(ScriptRevision).where(ScriptRevision.id == revision_id).values({column: value}))


def test_revision_scan_id_is_set_once_from_null(app, approved, people):  # noqa: F811
    _approval_id, revision_id = approved
    with app.app_context():
        scanned = db.session.get(ScriptRevision, revision_id)
        scan_id = scanned.scan_id
        assert scan_id is not None
        # Changing or clearing a recorded scan is refused.
        _refused(sa.update(ScriptRevision).where(ScriptRevision.id == revision_id).values(scan_id=None))
        scanned = db.session.get(ScriptRevision, revision_id)
        fresh = ScriptRevision(script_id=scanned.script_id, number=scanned.number + 1, title=scanned.title,
                               body=scanned.body, caption=scanned.caption, hashtags=scanned.hashtags,
                               platforms=scanned.platforms, sha256=scanned.sha256, created_by_id=scanned.created_by_id)
        db.session.add(fresh)
        db.session.flush()
        fresh.scan_id = scan_id  # what submit_script does right after the insert
        db.session.commit()
        assert db.session.get(ScriptRevision, fresh.id).scan_id == scan_id
        _refused(sa.update(ScriptRevision).where(ScriptRevision.id == fresh.id).values(scan_id=scan_id + 1000),
                 "immutable once set")


def test_voiding_and_flagging_an_approval_still_work(app, approved, people):  # noqa: F811
    approval_id, revision_id = approved
    with app.app_context():
        approval = db.session.get(Approval, approval_id)
        package = db.session.get(Package, approval.package_id)
        scan_id = db.session.get(ScriptRevision, revision_id).scan_id
        approval.flagged_at = utcnow()
        approval.flag_scan_id = scan_id
        db.session.commit()
        compliance.withdraw(package, user(people["compliance"]), "客户投诉")
        db.session.commit()
        approval = db.session.get(Approval, approval_id)
        assert approval.voided_at is not None and approval.void_reason
        assert approval.flag_scan_id == scan_id


def test_submitting_and_deciding_still_work_under_the_triggers(app, people):  # noqa: F811
    """The whole review flow writes revisions and approvals without tripping the triggers."""
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"])
    decide(app, review_id, people["officer2"])
    with app.app_context():
        assert db.session.get(Review, review_id).decision == "approve"
        assert compliance.live_approval(db.session.get(Package, package_id)) is not None
