"""The pin must hold: a render burns only the inputs pinned when it was requested, a reused rendition is
adopted, a stale render finishing last does not win, and the approved video is the one the scan saw.

Renders run in-process with real ffmpeg (the task function itself), so the order of events is ours.
"""

from __future__ import annotations

import hashlib
import io
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from advisor_studio import storage
from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from advisor_studio.video import services as video
from advisor_studio.video.models import Rendition, SourceVideo
from advisor_studio.video.tasks import render_rendition
from tests.factories import make_ready_rendition
from tests.video.test_pipeline import make_clip, make_package

SRT_A = "1\n00:00:00,200 --> 00:00:01,500\n分散投资，长期持有\n"
SRT_BANNED = "1\n00:00:00,200 --> 00:00:01,500\n跟我买，稳赚不赔\n"


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def _run(rendition_id: int) -> Rendition:
    """Run the render task in this process, as a worker would, and return the fresh row."""
    db.session.commit()
    assert render_rendition.apply(args=[rendition_id]).get() in ("ready", "failed")
    db.session.expire_all()
    return db.session.get(Rendition, rendition_id)


def _jpeg(color: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, "JPEG")
    return out.getvalue()


def _source(setup) -> SourceVideo:
    return db.session.get(SourceVideo, setup["source_id"])


@pytest.fixture
def fast_app(app_factory):
    return app_factory(RENDER_PRESET="ultrafast")


@pytest.fixture
def setup(fast_app, users, tmp_path):
    """A draft package of the test advisor with an accepted source video (nothing rendered yet)."""
    pid = make_package(fast_app, users)
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0)
    with fast_app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, pid)
        source = video.accept_upload(package, advisor, io.BytesIO(clip), "clip.mp4")
        db.session.commit()
        return {"package_id": pid, "source_id": source.id}


def test_render_burns_the_subtitles_it_was_queued_with_not_the_packages_later_ones(fast_app, users, setup):
    with fast_app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, setup["package_id"])
        studio.update_package(package, advisor, subtitles=SRT_A)
        first = video.request_render(package, _source(setup), advisor)
        # The advisor saves other subtitles while the worker is still busy with the first render.
        studio.update_package(package, advisor, subtitles=SRT_BANNED)
        db.session.commit()
        done = _run(first.id)
        assert done.status == "ready", done.error
        # The subtitle file the renderer burned in hashes to A's text, the hash the rendition is recorded with.
        assert done.recipe["render"]["subtitle_sha256"] == _sha(SRT_A) == done.recipe["request"]["subtitles_sha256"]
        assert done.recipe["request"]["subtitles_srt"] == SRT_A
        package = db.session.get(Package, setup["package_id"])
        assert package.subtitles_sha256 == _sha(SRT_BANNED)
        # Made from inputs the package no longer has: finished, kept, but not the package's video.
        assert package.rendition_id != done.id
        assert not video.rendition_is_current(package, done)


def test_stale_render_finishing_last_does_not_replace_the_current_one(fast_app, users, setup):
    with fast_app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, setup["package_id"])
        studio.update_package(package, advisor, subtitles=SRT_A)
        old = video.request_render(package, _source(setup), advisor)
        studio.update_package(package, advisor, subtitles="1\n00:00:00,200 --> 00:00:01,500\n长期持有\n")
        new = db.session.scalars(sa.select(Rendition).order_by(Rendition.id.desc())).first()
        assert new.id != old.id
        db.session.commit()
        assert _run(new.id).status == "ready"
        assert db.session.get(Package, setup["package_id"]).rendition_id == new.id
        assert _run(old.id).status == "ready"  # the older render finishes last
        package = db.session.get(Package, setup["package_id"])
        assert package.rendition_id == new.id
        assert video.rendition_is_current(package)


def test_removing_subtitles_adopts_the_earlier_rendition_and_the_approved_video_has_no_banned_line(
        fast_app, users, setup):
    """The drift attack: R0 without subtitles, R_B with banned ones, subtitles removed, submitted, approved."""
    with fast_app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        officer = db.session.get(User, users["compliance"].id)
        package = db.session.get(Package, setup["package_id"])
        r0 = _run(video.request_render(package, _source(setup), advisor).id)
        assert r0.status == "ready" and db.session.get(Package, setup["package_id"]).rendition_id == r0.id

        package = db.session.get(Package, setup["package_id"])
        studio.update_package(package, advisor, subtitles=SRT_BANNED)
        r_banned = db.session.scalars(sa.select(Rendition).order_by(Rendition.id.desc())).first()
        r_banned = _run(r_banned.id)
        assert r_banned.status == "ready" and r_banned.recipe["render"]["subtitle_sha256"] == _sha(SRT_BANNED)
        assert db.session.get(Package, setup["package_id"]).rendition_id == r_banned.id

        package = db.session.get(Package, setup["package_id"])
        studio.update_package(package, advisor, clear_subtitles=True)
        db.session.commit()
        package = db.session.get(Package, setup["package_id"])
        # The finished R0 matches the inputs again: it is reused and becomes the package's video.
        assert package.rendition_id == r0.id
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rendition)) == 2

        studio.submit_package(package, advisor)
        db.session.commit()
        review = db.session.scalars(sa.select(Review).where(Review.package_id == package.id)).one()
        compliance.claim(review, officer)
        compliance.decide(review, officer, "approve")
        db.session.commit()
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package.id)).one()
        assert approval.manifest["rendition_id"] == r0.id
        assert approval.manifest["rendition_sha256"] == r0.sha256 != r_banned.sha256
        assert approval.manifest["rendition_recipe_hash"] == r0.recipe_hash
        assert r0.recipe["render"]["subtitle_sha256"] is None and approval.manifest["subtitles_sha256"] is None


def test_render_fails_with_a_clear_reason_when_the_pinned_avatar_bytes_changed(fast_app, users, setup):
    with fast_app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        store = storage.get_storage()
        photo = store.put_stream(io.BytesIO(_jpeg("navy")), storage.new_key("avatars", ".jpg"))
        advisor.advisor_profile.avatar_key, advisor.advisor_profile.avatar_sha256 = photo.key, photo.sha256
        package = db.session.get(Package, setup["package_id"])
        studio.update_package(package, advisor, title_card=True)
        queued = db.session.scalars(sa.select(Rendition).order_by(Rendition.id.desc())).first()
        db.session.commit()
        store.put_stream(io.BytesIO(_jpeg("red")), photo.key)  # same key, another (valid) picture
        failed = _run(queued.id)
        assert failed.status == "failed" and failed.storage_key is None
        assert "[pinned_input]" in failed.error
        assert failed.recipe["request"]["avatar_key"] == photo.key
        assert failed.recipe["request"]["avatar_sha256"] == photo.sha256
        assert db.session.get(Package, setup["package_id"]).rendition_id is None


def test_render_queued_without_pinned_inputs_is_refused_rather_than_read_from_the_package(fast_app, users, setup):
    with fast_app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, setup["package_id"])
        studio.update_package(package, advisor, subtitles=SRT_A)
        queued = video.request_render(package, _source(setup), advisor)
        legacy = {k: v for k, v in queued.recipe["request"].items() if k not in ("subtitles_srt", "cover_title")}
        queued.recipe = {"request": legacy}
        failed = _run(queued.id)
        assert failed.status == "failed" and "[pinned_input]" in failed.error


def _finish(rendition: Rendition, marker: str) -> None:
    """Record a render as finished without running ffmpeg (mark_ready is what the task calls)."""
    result = SimpleNamespace(sha256=marker * 64, size_bytes=10, duration_s=2.0, width=1080, height=1920)
    video.mark_ready(rendition, key=f"renditions/{marker * 2}/{marker}.mp4", result=result,
                     cover_key=f"covers/{marker * 2}/{marker}.jpg", cover_sha256=marker * 64, recipe={})


def test_request_render_adopts_a_finished_identical_rendition(app, users):
    pid = make_package(app, users)
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, pid)
        plain = make_ready_rendition(package)
        studio.set_rendition(package, plain, advisor)
        studio.update_package(package, advisor, subtitles=SRT_BANNED)
        with_subtitles = db.session.scalars(sa.select(Rendition).order_by(Rendition.id.desc())).first()
        assert with_subtitles.status == "queued" and package.rendition_id == plain.id
        assert not video.rendition_is_current(package)
        _finish(with_subtitles, "a")
        assert package.rendition_id == with_subtitles.id
        studio.update_package(package, advisor, clear_subtitles=True)
        # Nothing new is rendered: the earlier rendition matches again and is the package's video again.
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rendition)) == 2
        assert package.rendition_id == plain.id and video.rendition_is_current(package)


def test_a_queued_identical_render_is_reused_and_adopted_when_it_finishes(app, users):
    pid = make_package(app, users)
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, pid)
        plain = make_ready_rendition(package)
        studio.set_rendition(package, plain, advisor)
        studio.update_package(package, advisor, subtitles=SRT_A)
        queued = db.session.scalars(sa.select(Rendition).order_by(Rendition.id.desc())).first()
        studio.update_package(package, advisor, clear_subtitles=True)
        studio.update_package(package, advisor, subtitles=SRT_A)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rendition)) == 2  # not queued twice
        assert package.rendition_id == plain.id
        _finish(queued, "b")
        assert package.rendition_id == queued.id


def test_mark_ready_does_not_adopt_a_render_of_earlier_inputs(app, users):
    pid = make_package(app, users)
    with app.app_context():
        package = db.session.get(Package, pid)
        source_id = make_ready_rendition(package).source_id  # the factory row is not the package's video
        queued = Rendition(package_id=pid, source_id=source_id, recipe={"request": video.recipe_inputs(package)},
                           recipe_hash=video.current_recipe_hash(package), status="queued")
        db.session.add(queued)
        db.session.flush()
        package.title = "改过的标题"  # the inputs change while the render runs
        db.session.flush()
        _finish(queued, "c")
        assert queued.status == "ready"
        assert package.rendition_id is None  # even a package without any video does not take a stale one


def test_render_whose_adoption_loses_a_race_is_recorded_on_retry_not_left_running(fast_app, users, setup,
                                                                                   monkeypatch):
    """The package's version check can refuse the adoption when someone saves the package at the
    moment the render finishes; the task reads again and records the result instead of dying."""
    from advisor_studio.concurrency import stale_conflict
    from advisor_studio.video import tasks

    real_mark_ready = video.mark_ready
    calls = []

    def lose_the_first_race(rendition, **result):
        calls.append(rendition.id)
        if len(calls) == 1:
            raise stale_conflict("package")
        return real_mark_ready(rendition, **result)

    monkeypatch.setattr(tasks.services, "mark_ready", lose_the_first_race)
    with fast_app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, setup["package_id"])
        rendition = video.request_render(package, _source(setup), advisor)
        done = _run(rendition.id)
        assert len(calls) == 2
        assert done.status == "ready" and done.sha256
        assert db.session.get(Package, setup["package_id"]).rendition_id == done.id
