"""Submission is refused unless the package's rendition was made from its current inputs (a clear 409
with its own code), the checklist says so, and saving the package again queues the render it needs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.compliance.models import Review
from advisor_studio.errors import Conflict
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from advisor_studio.video import services as video
from advisor_studio.video.models import Rendition
from tests.conftest import post_form, signed_in
from tests.factories import ensure_lexicon
from tests.studio.test_pages import attr, by_testid, package_for

SRT_BANNED = "1\n00:00:00,200 --> 00:00:01,500\n跟我买，稳赚不赔\n"
SRT_CLEAN = "1\n00:00:00,200 --> 00:00:01,500\n分散投资，长期持有\n"


@pytest.fixture(autouse=True)
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def _stale_package(app, users) -> int:
    """A package whose rendition was made before its subtitles changed (the new render still queued)."""
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    with app.app_context():
        package = db.session.get(Package, package_id)
        studio.update_package(package, db.session.get(User, users["advisor"].id), subtitles=SRT_CLEAN)
        db.session.commit()
    return package_id


def test_submit_of_a_rendition_made_before_the_subtitles_changed_is_a_clear_409(app, users):
    package_id = _stale_package(app, users)
    client = signed_in(app, users["advisor"])
    url = f"/studio/packages/{package_id}"
    page = client.get(url)
    assert attr(by_testid(page, "check-rendition")[0], "data-ok") == "false"
    assert by_testid(page, "rendition-stale")
    resp = post_form(client, f"{url}/submit", {}, form_page=url)
    assert resp.status_code == 409
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "rendition_stale"
    with app.app_context():
        assert db.session.get(Package, package_id).status == "draft"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Review)
                                 .where(Review.package_id == package_id)) == 0


def test_submit_is_refused_when_the_video_shows_banned_subtitles_the_package_no_longer_has(app, users):
    """The drift attack without ffmpeg: the package's video has the banned line, its text fields do not."""
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        from tests.factories import make_ready_rendition

        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, package_id)
        studio.update_package(package, advisor, subtitles=SRT_BANNED)
        banned = make_ready_rendition(package)
        studio.set_rendition(package, banned, advisor)
        package.subtitles_srt, package.subtitles_sha256 = None, None  # as if the reused render were not adopted
        db.session.flush()
        assert package.rendition_id == banned.id
        with pytest.raises(Conflict) as caught:
            studio.submit_package(package, advisor)
        assert caught.value.code == "rendition_stale" and caught.value.status == 409


def test_saving_unchanged_settings_queues_the_missing_render_once(app, users):
    package_id = _stale_package(app, users)
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, package_id)
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Rendition))
        # A new disclaimer makes every rendition stale with no edit of the package itself.
        officer = db.session.get(User, users["compliance"].id)
        video.set_disclaimer("投资有风险，入市需谨慎。本视频不构成任何投资建议。", officer)
        studio.update_package(package, advisor, subtitles=SRT_CLEAN)  # same text: nothing changed
        studio.update_package(package, advisor, subtitles=SRT_CLEAN)
        queued = db.session.scalars(sa.select(Rendition).order_by(Rendition.id.desc())).first()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rendition)) == before + 1
        assert queued.recipe_hash == video.current_recipe_hash(package)
        assert queued.recipe["request"]["disclaimer"].endswith("本视频不构成任何投资建议。")


def test_expired_package_with_an_outdated_video_can_be_rendered_again_and_renewed(app, users):
    from types import SimpleNamespace

    from advisor_studio.compliance import services as compliance
    from tests.studio.test_pages import approved_package

    # Approved for a period that has already ended (approvals are frozen once written).
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id, valid_days=-1)
    with app.app_context():
        assert compliance.expire_due_approvals() == 1
        video.set_disclaimer("投资有风险，入市需谨慎。本视频不构成任何投资建议。",
                             db.session.get(User, users["compliance"].id))
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, package_id)
        assert package.status == "expired" and not video.rendition_is_current(package)
        with pytest.raises(Conflict):
            studio.submit_package(package, advisor)
        studio.update_package(package, advisor, title=package.title)  # "save" with nothing changed
        queued = db.session.scalars(sa.select(Rendition).order_by(Rendition.id.desc())).first()
        assert queued.status == "queued" and queued.recipe_hash == video.current_recipe_hash(package)
        result = SimpleNamespace(sha256="e" * 64, size_bytes=10, duration_s=2.0, width=1080, height=1920)
        video.mark_ready(queued, key="renditions/ee/e.mp4", result=result, cover_key="covers/ee/e.jpg",
                         cover_sha256="e" * 64, recipe={})
        assert package.rendition_id == queued.id and package.status == "draft"
        studio.submit_package(package, advisor)
        assert package.status == "submitted"


def test_saving_an_approved_package_unchanged_queues_nothing(app, users):
    from tests.studio.test_pages import approved_package

    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        video.set_disclaimer("投资有风险，入市需谨慎。本视频不构成任何投资建议。",
                             db.session.get(User, users["compliance"].id))
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Rendition))
        package = db.session.get(Package, package_id)
        studio.update_package(package, db.session.get(User, users["advisor"].id), title=package.title)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rendition)) == before
        assert package.status == "approved"
