"""One definition of a live approval: the SQL expression and the Python predicate agree over a table of
cases, and every page or service that asks "is this approval live" gets the same answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.compliance import approvals
from advisor_studio.compliance import queries as compliance_queries
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.studio import queries as studio_queries
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from tests.factories import (
    ensure_lexicon,
    frozen_rows_unlocked,
    legal_script_body,
    make_channel,
    make_ready_rendition,
    make_user,
)

NOW = utcnow().replace(microsecond=0)
HOUR = timedelta(hours=1)

# (case, approval fields, package status, expected)
CASES = [
    ("live", {}, "approved", True),
    ("voided", {"voided_at": NOW - HOUR, "void_reason": "changed"}, "approved", False),
    ("expired", {"expires_at": NOW - HOUR}, "approved", False),
    ("expiry exactly now", {"expires_at": NOW}, "approved", False),
    ("expiry a minute from now", {"expires_at": NOW + timedelta(minutes=1)}, "approved", True),
    ("no expiry", {"expires_at": None}, "approved", False),
    ("package withdrawn", {}, "withdrawn", False),
    ("package expired", {}, "expired", False),
    ("package back in draft", {}, "draft", False),
    ("package submitted again", {}, "submitted", False),
    ("script-stage approval", {"stage": "script"}, "approved", False),
    ("voided and expired", {"voided_at": NOW - HOUR, "expires_at": NOW - HOUR}, "approved", False),
]


@pytest.fixture
def approved(app_ctx):
    """An approved package with one live approval, built through the real services."""
    ensure_lexicon()
    advisor, officer = make_user("advisor"), make_user("compliance")
    script = studio.create_script(advisor, title="资产配置三原则", body=legal_script_body(advisor),
                                  platforms=["douyin"])
    studio.submit_script(script, advisor)
    _decide(db.session.scalars(sa.select(Review).where(Review.script_id == script.id)).one(), officer)
    package = studio.create_package(script, advisor, channel_ids=[make_channel().id])
    studio.set_rendition(package, make_ready_rendition(package), advisor)
    studio.submit_package(package, advisor)
    _decide(_open_review(package), officer)
    db.session.commit()
    return {"package": package, "advisor": advisor, "officer": officer}


def _decide(review, officer) -> None:
    compliance.claim(review, officer)
    compliance.decide(review, officer, "approve")


def _open_review(package) -> Review:
    return db.session.scalars(sa.select(Review).where(Review.package_id == package.id,
                                                      Review.decision.is_(None))).one()


def _sql_live(approval: Approval, now) -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Approval)
                             .where(Approval.id == approval.id, approvals.live_clause(now))) == 1


@pytest.mark.parametrize("case, fields, status, expected", CASES, ids=[c[0] for c in CASES])
def test_sql_expression_and_python_predicate_agree(approved, case, fields, status, expected):
    package = approved["package"]
    approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package.id)).one()
    with frozen_rows_unlocked("approvals"):  # fixture rows in given states, not transitions under test
        for key, value in {"expires_at": NOW + timedelta(days=30), **fields}.items():
            setattr(approval, key, value)
        package.status = status
        db.session.flush()
    db.session.expire_all()  # compare what the database holds, not what this session remembers
    approval = db.session.get(Approval, approval.id)
    package = db.session.get(Package, package.id)
    assert _sql_live(approval, NOW) is expected, case
    assert approvals.is_live(approval, package, NOW) is expected, case
    assert approval.is_live(NOW) is expected, case
    live = approvals.live_approvals_by_package([package.id], NOW)
    assert (package.id in live) is expected, case


@pytest.mark.parametrize("case, fields, status, expected", CASES, ids=[c[0] for c in CASES])
def test_every_reader_of_live_approvals_gives_the_same_answer(approved, case, fields, status, expected):
    """services.live_approval, both dashboards' lists and the landing counts use the one definition."""
    package = approved["package"]
    now = utcnow()
    shifted = {k: (v - NOW + now if k in ("expires_at", "voided_at") and v is not None else v)
               for k, v in fields.items()}
    if case == "expiry exactly now":
        shifted["expires_at"] = now - timedelta(microseconds=1)  # by the time the readers ask, it is past
    approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package.id)).one()
    with frozen_rows_unlocked("approvals"):
        for key, value in {"expires_at": now + timedelta(days=3), **shifted}.items():
            setattr(approval, key, value)
        package.status = status
        db.session.flush()
    db.session.commit()

    assert (compliance.live_approval(package) is not None) is expected
    assert (package.id in studio_queries.live_approvals([package.id])) is expected
    listed = db.session.scalars(compliance_queries.live_approvals_query()).unique().all()
    assert (approval.id in {a.id for a in listed}) is expected
    landing = compliance_queries.landing_data(approved["officer"])
    assert (landing["expiring_count"] == 1) is expected
    advisor_landing = studio_queries.landing_data(approved["advisor"])
    assert (len(advisor_landing["expiring"]) == 1) is expected


def test_with_several_approvals_only_the_newest_unvoided_one_is_live(approved):
    package, advisor, officer = approved["package"], approved["advisor"], approved["officer"]
    first = compliance.live_approval(package)
    assert first is not None
    studio.update_package(package, advisor, caption="新的文案，长期投资")  # voids the first approval
    studio.submit_package(package, advisor)
    _decide(_open_review(package), officer)
    db.session.commit()
    rows = db.session.scalars(sa.select(Approval).where(Approval.package_id == package.id)
                              .order_by(Approval.id)).all()
    assert len(rows) == 2 and rows[0].voided_at is not None
    assert compliance.live_approval(package).id == rows[1].id
    assert [approvals.is_live(a, package) for a in rows] == [False, True]
    assert [_sql_live(a, utcnow()) for a in rows] == [False, True]


def test_withdrawn_package_has_no_live_approval_even_before_the_void_is_written(approved):
    """The package status alone is enough: an approval row left unvoided by a bug is still not live."""
    package = approved["package"]
    package.status = "withdrawn"
    db.session.flush()
    assert compliance.live_approval(package) is None
    assert studio_queries.live_approvals([package.id]) == {}
