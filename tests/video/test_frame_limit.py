"""A source video with a frame side above MAX_VIDEO_SIDE_PX is refused at upload, before any decoding."""

from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa

from advisor_studio.extensions import db
from advisor_studio.video.models import Rendition, SourceVideo
from advisor_studio.video.probe import ProbeError, ffmpeg_exe, probe
from tests.conftest import csrf_from, signed_in, stored_keys
from tests.video.test_pipeline import make_package


def tiny_clip(path, size: str) -> bytes:
    """One grey frame of ``size``: a frame side above the limit without megapixels of work."""
    args = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:size={size}:rate=1:duration=1",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return path.read_bytes()


@pytest.mark.parametrize("size", ["4100x16", "16x4100"])
def test_probe_refuses_a_frame_wider_or_taller_than_the_limit(tmp_path, size):
    path = tmp_path / "big.mp4"
    tiny_clip(path, size)
    with pytest.raises(ProbeError) as caught:
        probe(str(path))
    assert caught.value.reason_code == "frame_too_large"
    assert probe(str(path), max_side_px=4100).width == int(size.split("x")[0])


def test_upload_of_a_frame_above_the_limit_is_refused_with_the_reason_and_not_kept(app, users, tmp_path):
    package_id = make_package(app, users)
    body = tiny_clip(tmp_path / "wide.mp4", "4100x16")
    client = signed_in(app, users["advisor"])
    before = stored_keys(app)
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    resp = client.post(f"/studio/packages/{package_id}/video?lang=en", data=body,
                       headers={"X-CSRFToken": token, "X-Requested-With": "XMLHttpRequest", "X-Filename": "wide.mp4",
                                "Content-Type": "application/octet-stream"})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.json["error"]["code"] == "frame_too_large"
    assert "too large" in resp.json["error"]["message"] and "4096 pixels on a side" in resp.json["error"]["message"]
    assert stored_keys(app) == before
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SourceVideo)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rendition)) == 0
