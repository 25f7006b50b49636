"""Each event notifies exactly the right people: decisions the author, submissions every officer who may
decide them, renders the package's advisor; inside the event's transaction, never failing it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.accounts.queries import held_admin_recently
from advisor_studio.compliance.models import Review
from advisor_studio.compliance.permissions import can_decide
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.notifications import queries, services
from advisor_studio.notifications.models import Notification
from advisor_studio.studio.models import Package
from tests.notifications.conftest import decide, last_id, rows, submit_package, submit_script, user


def eligible(people, author: str) -> list[int]:
    """The officers who may decide a review by ``author``: the two plain officers, the advisor who is
    also an officer, the officer whose admin role ended long ago; never the author."""
    return sorted(people[k].id for k in ("officer", "officer2", "both", "old_admin") if k != author)


def test_a_submitted_script_is_due_for_every_officer_who_may_decide_it(app, people):
    script_id, review_id = submit_script(app, people["advisor"].id, title="资产配置三原则")
    assert rows(app) == [(uid, "review_due", "review", review_id) for uid in eligible(people, "advisor")]
    with app.app_context():
        note = db.session.scalars(sa.select(Notification)).first()
        review = db.session.get(Review, review_id)
        assert note.params["stage"] == "script" and note.params["title"] == "资产配置三原则"
        assert note.params["author"] == review.author.name
        assert note.params["due_at"] == review.due_at.isoformat()
        assert note.read_at is None and note.emailed_at is None


def test_an_officer_who_authored_the_script_is_not_told_to_review_it(app, people):
    _script_id, review_id = submit_script(app, people["both"].id)
    recipients = [r[0] for r in rows(app)]
    assert people["both"].id not in recipients
    assert recipients == eligible(people, "both")


def test_the_officer_list_agrees_with_the_decide_predicate(app, people):
    _script_id, review_id = submit_script(app, people["advisor"].id)
    with app.app_context():
        review = db.session.get(Review, review_id)
        everyone = db.session.scalars(sa.select(User).order_by(User.id)).all()
        by_predicate = [u.id for u in everyone if u.active and can_decide(u, review)]
        assert queries.reviewing_officer_ids(exclude_user_id=review.author_id) == by_predicate
        from advisor_studio.accounts.queries import recent_admin_ids

        in_sql = set(db.session.scalars(sa.select(sa.literal_column("user_id")).select_from(
            recent_admin_ids().subquery())))
        assert in_sql == {u.id for u in everyone if held_admin_recently(u)}
        assert in_sql == {people["admin_officer"].id, people["recent_admin"].id}


def test_a_submitted_package_is_due_for_the_officers_with_its_title(app, people):
    before = last_id(app)
    package_id, review_id = submit_package(app, people["advisor"].id, people["officer"].id, title="三分钟讲清资产配置")
    new = rows(app, before)
    due = [r for r in new if r[1] == "review_due" and r[3] == review_id]
    assert due == [(uid, "review_due", "review", review_id) for uid in eligible(people, "advisor")]
    with app.app_context():
        note = db.session.scalars(sa.select(Notification).where(Notification.object_id == review_id,
                                                                Notification.kind == "review_due")).first()
        assert note.params["stage"] == "package" and note.params["title"] == "三分钟讲清资产配置"


@pytest.mark.parametrize("decision,kind,reason", [
    ("approve", "script_approved", ""),
    ("request_changes", "script_changes_requested", "请补充风险提示的位置"),
    ("reject", "script_rejected", "内容与投资顾问业务无关"),
])
def test_a_script_decision_notifies_its_author_alone(app, people, decision, kind, reason):
    script_id, review_id = submit_script(app, people["advisor"].id)
    before = last_id(app)
    decide(app, review_id, people["officer"].id, decision, reason)
    assert rows(app, before) == [(people["advisor"].id, kind, "script", script_id)]
    with app.app_context():
        note = db.session.scalars(sa.select(Notification).where(Notification.id > before)).one()
        assert note.params == {"title": "资产配置三原则", "reason": reason}


@pytest.mark.parametrize("decision,kind", [
    ("approve", "package_approved"),
    ("request_changes", "package_changes_requested"),
    ("reject", "package_rejected"),
])
def test_a_package_decision_notifies_its_author_alone(app, people, decision, kind):
    package_id, review_id = submit_package(app, people["advisor"].id, people["officer"].id)
    before = last_id(app)
    decide(app, review_id, people["officer2"].id, decision, "" if decision == "approve" else "字幕与脚本不一致")
    assert rows(app, before) == [(people["advisor"].id, kind, "package", package_id)]


def test_a_refused_decision_notifies_nobody(app, people):
    from advisor_studio.compliance import services as compliance
    from advisor_studio.errors import ValidationError

    _script_id, review_id = submit_script(app, people["advisor"].id)
    before = last_id(app)
    with app.app_context():
        review = db.session.get(Review, review_id)
        compliance.claim(review, user(people["officer"].id))
        db.session.commit()
        with pytest.raises(ValidationError):
            compliance.decide(review, user(people["officer"].id), "reject", "")  # a reason is required
        db.session.rollback()
    assert rows(app, before) == []


def test_a_submission_rolled_back_leaves_no_notifications(app, people):
    from advisor_studio.studio import services as studio
    from tests.factories import legal_script_body

    before = last_id(app)
    with app.app_context():
        author = user(people["advisor"].id)
        script = studio.create_script(author, title="t", body=legal_script_body(author))
        studio.submit_script(script, author)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 4
        db.session.rollback()  # the event did not happen: nor did its notifications
    assert rows(app, before) == []


# --- renders -----------------------------------------------------------------------------------------


def _queued_rendition(app, people, *, pinned: bool):
    """A package of the advisor with a real uploaded clip and a queued render of it."""
    from advisor_studio.video import services as video
    from tests.video.test_pipeline import make_clip, make_package

    users = {"advisor": people["advisor"], "compliance": people["officer"]}
    package_id = make_package(app, users)
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, app.app_context():
        clip = make_clip(pathlib.Path(tmp) / "clip.mp4", seconds=1.0)
        package = db.session.get(Package, package_id)
        advisor = user(people["advisor"].id)
        source = video.accept_upload(package, advisor, io.BytesIO(clip), "clip.mp4")
        rendition = video.request_render(package, source, advisor, enqueue=False)
        if not pinned:
            rendition.recipe = {"request": {}}  # as if queued before inputs were pinned: the task refuses it
        db.session.commit()
        return package_id, rendition.id


def test_a_finished_render_notifies_the_packages_advisor(app, people):
    from advisor_studio.video.tasks import render_rendition

    package_id, rendition_id = _queued_rendition(app, people, pinned=True)
    before = last_id(app)
    with app.app_context():
        assert render_rendition.apply(args=[rendition_id]).get() == "ready"
    assert rows(app, before) == [(people["advisor"].id, "render_finished", "package", package_id)]
    with app.app_context():  # a second delivery of the same task finds the result and notifies nobody again
        assert render_rendition.apply(args=[rendition_id]).get() == "ready"
    assert len(rows(app, before)) == 1


def test_a_failed_render_notifies_the_advisor_with_the_reason_code(app, people):
    from advisor_studio.video.tasks import render_rendition

    package_id, rendition_id = _queued_rendition(app, people, pinned=False)
    before = last_id(app)
    with app.app_context():
        assert render_rendition.apply(args=[rendition_id]).get() == "failed"
        note = db.session.scalars(sa.select(Notification).where(Notification.id > before)).one()
        assert note.params["code"] == "pinned_input"
    assert rows(app, before) == [(people["advisor"].id, "render_failed", "package", package_id)]


# --- reviews nearing their due time ------------------------------------------------------------------


def test_reviews_nearing_their_due_time_are_announced_once(app_factory, people):
    app = app_factory(REVIEW_DUE_SOON_HOURS=4, REVIEW_SLA_HOURS={"script": 24, "package": 48})
    _s1, soon = submit_script(app, people["advisor"].id, title="快到期")
    _s2, decided = submit_script(app, people["advisor"].id, title="已决定")
    decide(app, decided, people["officer"].id, "approve")
    before = last_id(app)
    with app.app_context():
        # 21 hours later the first review (due at 24 h) is within 4 hours of its due time.
        later = utcnow() + timedelta(hours=21)
        db.session.execute(sa.update(Review).where(Review.id == soon).values(due_at=utcnow() + timedelta(hours=3)))
        db.session.commit()
        assert services.notify_reviews_due_soon(now=utcnow()) == 1
        db.session.commit()
        assert services.notify_reviews_due_soon(now=later) == 0  # announced already
        db.session.commit()
    assert rows(app, before) == [(uid, "review_due_soon", "review", soon) for uid in eligible(people, "advisor")]


def test_a_review_far_from_its_due_time_is_not_announced(app, people):
    submit_script(app, people["advisor"].id)
    before = last_id(app)
    with app.app_context():
        assert services.notify_reviews_due_soon() == 0  # due in 24 h, announced 4 h before
    assert rows(app, before) == []


def test_the_database_refuses_a_second_due_soon_row_without_failing_the_caller(app, people):
    _script_id, review_id = submit_script(app, people["advisor"].id)
    officer = people["officer"].id
    with app.app_context():
        first = services.notify("review_due_soon", [officer], object_type="review", object_id=review_id)
        db.session.commit()
        assert len(first) == 1
        # Two sweeps at once: the second insert is refused by the unique index, its savepoint rolled back,
        # and the caller's own work in the same transaction still commits.
        user(officer).name = "改名后的合规"
        assert services.notify("review_due_soon", [officer], object_type="review", object_id=review_id) == []
        db.session.commit()
        assert user(officer).name == "改名后的合规"
    assert [r for r in rows(app) if r[1] == "review_due_soon"] == [(officer, "review_due_soon", "review", review_id)]


def test_an_unknown_kind_writes_nothing(app, people):
    with app.app_context():
        assert services.notify("lottery_won", [people["advisor"].id], object_type="package", object_id=1) == []
        assert services.notify("render_finished", [people["advisor"].id], object_type="user", object_id=1) == []
        assert services.notify("render_finished", [], object_type="package", object_id=1) == []
    assert rows(app) == []
