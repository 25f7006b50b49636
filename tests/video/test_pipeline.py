"""Uploads, probing and renders through the app: HTTP upload, a real worker, a killed worker."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

from advisor_studio import audit, storage
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from advisor_studio.video import services as video
from advisor_studio.video.models import Rendition, SourceVideo
from advisor_studio.video.probe import ffmpeg_exe
from tests.conftest import csrf_from, signed_in, stored_keys
from tests.factories import legal_script_body, make_channel


def make_clip(path, seconds: float = 2.0, size: str = "320x568", audio: bool = True) -> bytes:
    args = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest", str(path)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return path.read_bytes()


@pytest.fixture
def package_id(app, users):
    """A draft package of the test advisor whose script compliance pre-approved."""
    return make_package(app, users)


def make_package(app, users) -> int:
    from advisor_studio.accounts.models import User
    from advisor_studio.compliance import services as compliance
    from advisor_studio.compliance.models import Review

    with app.app_context():
        compliance.ensure_default_lexicon("test")
        advisor = db.session.get(User, users["advisor"].id)
        officer = db.session.get(User, users["compliance"].id)
        script = studio.create_script(advisor, title="资产配置", body=legal_script_body(advisor), platforms=["douyin"])
        studio.submit_script(script, advisor)
        review = db.session.scalars(sa.select(Review)).one()
        compliance.claim(review, officer)
        compliance.decide(review, officer, "approve")
        package = studio.create_package(script, advisor, channel_ids=[make_channel().id])
        db.session.commit()
        return package.id


def _xhr_upload(client, package_id: int, body: bytes, name: str = "clip.mp4"):
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    return client.post(f"/studio/packages/{package_id}/video", data=body,
                       headers={"X-CSRFToken": token, "X-Requested-With": "XMLHttpRequest", "X-Filename": name,
                                "Content-Type": "application/octet-stream"})


def _stored_keys(app) -> set[str]:
    return stored_keys(app)


@pytest.mark.parametrize("case", ["text_renamed_mp4", "zero_bytes", "truncated", "audio_only"])
def test_unplayable_uploads_are_refused_and_not_kept(app, users, package_id, tmp_path, case):
    good = make_clip(tmp_path / "good.mp4")
    body = {
        "text_renamed_mp4": "这不是视频 just text\n".encode() * 100,
        "zero_bytes": b"",
        "truncated": good[: len(good) // 2],
        "audio_only": None,
    }[case]
    if case == "audio_only":
        path = tmp_path / "a.m4a"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac",
                        str(path)], check=True, timeout=60)
        body = path.read_bytes()
    client = signed_in(app, users["advisor"])
    before = _stored_keys(app)
    resp = _xhr_upload(client, package_id, body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.json["error"]["message"]
    assert _stored_keys(app) == before  # the refused file is not kept
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SourceVideo)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rendition)) == 0


def test_too_long_video_is_refused_with_the_limit(app_factory, users, tmp_path):
    app = app_factory(MAX_VIDEO_SECONDS=1)
    pid = make_package(app, users)
    client = signed_in(app, users["advisor"])
    resp = _xhr_upload(client, pid, make_clip(tmp_path / "long.mp4", seconds=3))
    assert resp.status_code == 400 and resp.json["error"]["code"] == "too_long"


def test_other_advisor_cannot_upload_to_my_package(app, users, package_id, tmp_path):
    client = signed_in(app, users["advisor2"])
    assert _xhr_upload(client, package_id, b"whatever").status_code == 403


def test_upload_without_csrf_header_is_refused(app, users, package_id):
    client = signed_in(app, users["advisor"])
    resp = client.post(f"/studio/packages/{package_id}/video", data=b"x",
                       headers={"X-Requested-With": "XMLHttpRequest"})
    assert resp.status_code == 400


def test_oversized_upload_gets_413_and_nothing_is_stored(app_factory, users, package_id, tmp_path):
    app = app_factory(MAX_CONTENT_LENGTH=50_000)
    client = signed_in(app, users["advisor"])
    before = _stored_keys(app)
    resp = _xhr_upload(client, package_id, b"\x00" * 60_000)
    assert resp.status_code == 413
    assert _stored_keys(app) == before


def test_upload_streams_into_storage_and_queues_a_render(app, users, package_id, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    client = signed_in(app, users["advisor"])
    resp = _xhr_upload(client, package_id, clip, name="%E6%88%91%E7%9A%84.mp4")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    with app.app_context():
        source = db.session.get(SourceVideo, resp.json["source_id"])
        assert source.original_name == "我的.mp4" and source.size_bytes == len(clip)
        assert "我的" not in source.storage_key
        with storage.get_storage().open(source.storage_key) as fh:
            assert fh.read() == clip
        rendition = db.session.get(Rendition, resp.json["rendition_id"])
        assert rendition.status == "queued" and rendition.storage_key is None
    status = client.get(resp.json["status_url"]).json
    assert status["status"] == "queued" and status["in_use"] is False


def _wait_for(app, rendition_id: int, statuses: set[str], timeout: float = 180.0, worker=None) -> Rendition:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            rendition = db.session.get(Rendition, rendition_id)
            if rendition.status in statuses:
                db.session.expunge(rendition)
                return rendition
        time.sleep(0.5)
    log = worker.log_path.read_text() if worker is not None else ""
    raise AssertionError(f"rendition {rendition_id} did not reach {statuses}\n{log[-4000:]}")


@pytest.mark.worker
def test_real_worker_renders_and_the_package_uses_the_rendition(app_factory, users, tmp_path, request):
    app = app_factory(RENDER_PRESET="ultrafast")
    pid = request.getfixturevalue("package_id")
    worker = request.getfixturevalue("worker")
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0)
    client = signed_in(app, users["advisor"])
    resp = _xhr_upload(client, pid, clip)
    assert resp.status_code == 201
    rendition = _wait_for(app, resp.json["rendition_id"], {"ready", "failed"}, worker=worker)
    assert rendition.status == "ready", rendition.error
    assert rendition.width == 1080 and rendition.height == 1920 and rendition.progress == 100.0
    with app.app_context():
        package = db.session.get(Package, pid)
        assert package.rendition_id == rendition.id
        data = b"".join(storage.get_storage().iter_range(rendition.storage_key))
        import hashlib

        assert hashlib.sha256(data).hexdigest() == rendition.sha256 and len(data) == rendition.size_bytes
        assert rendition.recipe["render"]["sac_number"] == users["advisor"].sac_number
        assert audit.verify().ok
    video_resp = client.get(f"/studio/renditions/{rendition.id}/video.mp4", headers={"Range": "bytes=0-99"})
    assert video_resp.status_code == 206 and len(video_resp.data) == 100
    # The same upload again reuses the finished rendition instead of rendering twice.
    with app.app_context():
        package = db.session.get(Package, pid)
        source = db.session.scalars(sa.select(SourceVideo)).one()
        again = video.request_render(package, source, package.author)
        assert again.id == rendition.id


def test_changing_subtitles_requests_a_new_rendition_and_keeps_the_old(app, users, package_id, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    with app.app_context():
        from advisor_studio.accounts.models import User

        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, package_id)
        source = video.accept_upload(package, advisor, io.BytesIO(clip), "clip.mp4")
        first = video.request_render(package, source, advisor)
        studio.update_package(package, advisor, subtitles="1\n00:00:00,500 --> 00:00:01,500\n分散投资\n")
        renditions = db.session.scalars(sa.select(Rendition).order_by(Rendition.id)).all()
        assert [r.id for r in renditions][0] == first.id and len(renditions) == 2
        assert renditions[1].recipe["request"]["subtitles_sha256"] == package.subtitles_sha256


def test_render_refused_when_profile_has_no_valid_sac_number(app, users, package_id, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    with app.app_context():
        from advisor_studio.accounts.models import User
        from advisor_studio.errors import ValidationError

        advisor = db.session.get(User, users["advisor"].id)
        advisor.advisor_profile.sac_number = "S123"  # a damaged profile (the admin form would refuse this)
        package = db.session.get(Package, package_id)
        source = video.accept_upload(package, advisor, io.BytesIO(clip), "clip.mp4")
        with pytest.raises(ValidationError):
            video.request_render(package, source, advisor)


@pytest.mark.worker
def test_killed_worker_leaves_nothing_half_made_and_the_render_completes(app_factory, users, tmp_path, request):
    app = app_factory(RENDER_PRESET="ultrafast")
    pid = request.getfixturevalue("package_id")
    worker = request.getfixturevalue("worker")
    clip = make_clip(tmp_path / "clip.mp4", seconds=12.0, size="720x1280")
    client = signed_in(app, users["advisor"])
    resp = _xhr_upload(client, pid, clip)
    rid = resp.json["rendition_id"]
    _wait_for(app, rid, {"running"}, timeout=120, worker=worker)
    # Wait until ffmpeg is really encoding, then kill the pool process that runs the task.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with app.app_context():
            if db.session.get(Rendition, rid).progress > 0:
                break
        time.sleep(0.2)
    children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the worker has no pool process"
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    with app.app_context():
        rendition = db.session.get(Rendition, rid)
        assert rendition.storage_key is None and rendition.sha256 is None  # nothing half-made is visible
        assert db.session.get(Package, pid).rendition_id is None
    done = _wait_for(app, rid, {"ready", "failed"}, timeout=240, worker=worker)
    assert done.status == "ready", done.error
    assert done.attempts >= 2


def test_interrupted_upload_leaves_nothing_stored(app, users, package_id):
    from werkzeug.exceptions import ClientDisconnected

    class Dropping(io.RawIOBase):
        """Yields some bytes, then the connection drops, as a browser closing mid-upload would."""

        def __init__(self):
            self.sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.sent > 3 * 1024 * 1024:
                raise ClientDisconnected()
            n = len(buffer)
            buffer[:n] = b"\x00" * n
            self.sent += n
            return n

    before = _stored_keys(app)
    with app.app_context():
        from advisor_studio.accounts.models import User

        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, package_id)
        with pytest.raises(ClientDisconnected):
            video.accept_upload(package, advisor, io.BufferedReader(Dropping()), "clip.mp4")
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SourceVideo)) == 0
    assert _stored_keys(app) == before


def test_render_that_keeps_killing_its_worker_stops_after_the_cap(app, users, package_id, tmp_path):
    from advisor_studio.video.tasks import MAX_ATTEMPTS, render_rendition

    clip = make_clip(tmp_path / "clip.mp4")
    with app.app_context():
        from advisor_studio.accounts.models import User

        advisor = db.session.get(User, users["advisor"].id)
        package = db.session.get(Package, package_id)
        source = video.accept_upload(package, advisor, io.BytesIO(clip), "clip.mp4")
        rendition = video.request_render(package, source, advisor)
        rendition.attempts = MAX_ATTEMPTS  # as if the worker died this many times mid-render
        db.session.commit()
        assert render_rendition.apply(args=[rendition.id]).get() == "failed"
        db.session.expire_all()
        failed = db.session.get(Rendition, rendition.id)
        assert failed.status == "failed" and "interrupted" in failed.error
        video.retry_render(failed, advisor)
        assert failed.status == "queued" and failed.attempts == 0
