"""Assignments follow approvals in the same transaction; publications and take-downs are validated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.distribution import queries, services
from advisor_studio.distribution.models import Assignment, WebhookEvent
from advisor_studio.errors import Conflict, Unprocessable, ValidationError
from advisor_studio.extensions import db
from advisor_studio.studio.models import Package

NOW = datetime.now(UTC)


def _publish(assignment, url="https://www.douyin.com/video/7301", when=None):
    return services.report_publication(assignment, platform="douyin", post_url=url,
                                       published_at=when or datetime.now(UTC), actor="test")


def test_final_approval_assigns_each_target_channel_and_records_an_event(app, approved):
    package_id, assignment_id = approved
    with app.app_context():
        assignment = db.session.get(Assignment, assignment_id)
        assert assignment.status == "ready" and assignment.takedown_due_at is None
        assert assignment.approval.package_id == package_id
        assert assignment.partner_id == assignment.channel.partner_id
        events = db.session.scalars(sa.select(WebhookEvent).where(WebhookEvent.assignment_id == assignment_id)).all()
        assert [e.type for e in events] == ["asset.assigned"]
        assert events[0].payload["data"] == {"asset_id": assignment_id, "status": "ready", "takedown_due_at": None}
        assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "assignment.created",
                                                             AuditEntry.object_id == str(assignment_id)))


def test_withdrawal_moves_assignments_with_a_takedown_deadline_in_the_same_transaction(app, approved, users):
    package_id, assignment_id = approved
    app.config["TAKEDOWN_DEADLINE_HOURS"] = 6
    with app.app_context():
        _publish(db.session.get(Assignment, assignment_id))
        db.session.commit()
        officer = db.session.get(User, users["compliance"].id)
        compliance.withdraw(db.session.get(Package, package_id), officer, "误导性表述")
        db.session.rollback()  # nothing committed: the assignment must not have moved either
        assert db.session.get(Assignment, assignment_id).status == "published"
        compliance.withdraw(db.session.get(Package, package_id), officer, "误导性表述")
        db.session.commit()
        assignment = db.session.get(Assignment, assignment_id)
        assert assignment.status == "withdrawn" and assignment.takedown_completed_at is None
        assert timedelta(hours=5, minutes=59) < assignment.takedown_due_at - datetime.now(UTC) <= timedelta(hours=6)
        types = db.session.scalars(sa.select(WebhookEvent.type).where(WebhookEvent.assignment_id == assignment_id)
                                   .order_by(WebhookEvent.id)).all()
        assert types == ["asset.assigned", "asset.withdrawn"]


def test_expiry_without_any_post_needs_no_takedown(app, approved):
    package_id, assignment_id = approved
    with app.app_context():
        assert compliance.expire_due_approvals(now=datetime.now(UTC) + timedelta(days=400)) == 1
        db.session.commit()
        assignment = db.session.get(Assignment, assignment_id)
        assert assignment.status == "expired" and assignment.takedown_completed_at is not None
        assert queries.count_overdue_takedowns(datetime.now(UTC) + timedelta(days=2)) == 0


@pytest.mark.parametrize("url, field_problem", [
    ("not a url", "post_url"),
    ("javascript:alert(1)", "post_url"),
    ("https://evil.example.com/video/1", "post_url"),
    ("https://www.douyin.com.evil.example/video/1", "post_url"),
    ("https://user@www.douyin.com/video/1", "post_url"),
    ("https://www.douyin.com\\@evil.example/", "post_url"),
])
def test_publication_with_a_bad_or_foreign_url_is_refused_and_changes_nothing(app, approved, url, field_problem):
    _package_id, assignment_id = approved
    with app.app_context():
        with pytest.raises(ValidationError) as err:
            _publish(db.session.get(Assignment, assignment_id), url=url)
        assert field_problem in err.value.fields
        db.session.rollback()
        assert db.session.get(Assignment, assignment_id).status == "ready"
        assert db.session.get(Assignment, assignment_id).publications == []


def test_publication_dated_years_ahead_or_wrong_platform_is_refused(app, approved):
    _package_id, assignment_id = approved
    with app.app_context():
        assignment = db.session.get(Assignment, assignment_id)
        with pytest.raises(ValidationError) as err:
            _publish(assignment, when=datetime.now(UTC) + timedelta(days=3 * 365))
        assert "published_at" in err.value.fields
        with pytest.raises(ValidationError) as err:
            services.report_publication(assignment, platform="bilibili", post_url="https://www.bilibili.com/video/1",
                                        published_at=datetime.now(UTC), actor="test")
        assert "platform" in err.value.fields
        with pytest.raises(ValidationError):
            _publish(assignment, when=datetime(2026, 1, 1))  # naive: no time zone


def test_duplicate_publication_is_a_conflict(app, approved):
    _package_id, assignment_id = approved
    with app.app_context():
        assignment = db.session.get(Assignment, assignment_id)
        _publish(assignment, url="https://www.douyin.com/video/7301")
        db.session.commit()
        assert assignment.status == "published"
        with pytest.raises(Conflict):
            _publish(assignment, url="HTTPS://WWW.DOUYIN.COM/video/7301#comments")


def test_takedown_only_for_ended_assets_and_reported_posts_then_completes(app, approved, users):
    package_id, assignment_id = approved
    with app.app_context():
        assignment = db.session.get(Assignment, assignment_id)
        first = _publish(assignment, url="https://www.douyin.com/video/1")
        _publish(assignment, url="https://v.douyin.com/abc")
        db.session.commit()
        with pytest.raises(Conflict) as err:
            services.confirm_takedown(assignment, post_url="https://www.douyin.com/video/1",
                                      removed_at=datetime.now(UTC), actor="test")
        assert err.value.code == "asset_live"
        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id), "撤回")
        db.session.commit()
        with pytest.raises(Unprocessable):
            services.confirm_takedown(assignment, post_url="https://www.douyin.com/video/999",
                                      removed_at=datetime.now(UTC), actor="test")
        with pytest.raises(ValidationError):
            services.confirm_takedown(assignment, post_url="https://www.douyin.com/video/1",
                                      removed_at=first.published_at - timedelta(days=1), actor="test")
        services.confirm_takedown(assignment, post_url="https://www.douyin.com/video/1",
                                  removed_at=datetime.now(UTC), actor="test")
        db.session.commit()
        with pytest.raises(Conflict):
            services.confirm_takedown(assignment, post_url="https://www.douyin.com/video/1",
                                      removed_at=datetime.now(UTC), actor="test")
        db.session.rollback()
        later = datetime.now(UTC) + timedelta(days=2)
        assert [a.id for a in queries.overdue_takedowns(later)] == [assignment_id]
        assert services.raise_overdue_takedowns(later) == 1
        assert services.raise_overdue_takedowns(later) == 0  # once per assignment
        services.confirm_takedown(assignment, post_url="https://v.douyin.com/abc", removed_at=datetime.now(UTC),
                                  actor="test")
        db.session.commit()
        assert db.session.get(Assignment, assignment_id).takedown_completed_at is not None
        assert queries.overdue_takedowns(later) == []


def test_partner_listing_is_keyset_paginated_newest_first_and_scoped(app, approved):
    _package_id, assignment_id = approved
    with app.app_context():
        partner_id = db.session.get(Assignment, assignment_id).partner_id
        rows, nxt = queries.partner_assets(partner_id, limit=10)
        assert [r.id for r in rows] == [assignment_id] and nxt is None
        assert queries.partner_assets(partner_id + 1000)[0] == []
        assert queries.partner_asset(partner_id + 1000, assignment_id) is None
        assert queries.decode_cursor(queries.encode_cursor(assignment_id)) == assignment_id
        for bad in ("x", "YTE6LTE", "!!!!", "a" * 100):
            with pytest.raises(ValidationError):
                queries.decode_cursor(bad)
