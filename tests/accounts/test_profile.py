"""Advisors edit their own bio and photo; photos are decoded, cleaned and served to signed-in users."""

from __future__ import annotations

import io

from PIL import Image

from advisor_studio.accounts.models import AdvisorProfile
from advisor_studio.extensions import db
from tests.conftest import csrf_from, signed_in


def _png(width=800, height=600, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def _upload(client, data: dict):
    token = csrf_from(client.get("/account/profile").get_data(as_text=True))
    return client.post("/account/profile", data={**data, "csrf_token": token}, content_type="multipart/form-data")


def test_advisor_uploads_photo_which_is_squared_and_reencoded(app, users):
    client = signed_in(app, users["advisor"])
    resp = _upload(client, {"bio": "十年A股研究经验", "avatar": (io.BytesIO(_png()), "me.png")})
    assert resp.status_code == 302
    with app.app_context():
        profile = db.session.get(AdvisorProfile, users["advisor"].id)
        assert profile.bio == "十年A股研究经验" and profile.avatar_key.startswith("avatars/")
        assert "me" not in profile.avatar_key
    served = signed_in(app, users["compliance"]).get(f"/advisors/{users['advisor'].id}/avatar.jpg", buffered=True)
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(served.data)) as img:
        assert img.format == "JPEG" and img.size == (512, 512)


def test_text_file_named_png_is_refused_and_old_photo_kept(app, users):
    client = signed_in(app, users["advisor"])
    _upload(client, {"bio": "", "avatar": (io.BytesIO(_png()), "me.png")})
    with app.app_context():
        before = db.session.get(AdvisorProfile, users["advisor"].id).avatar_key
    resp = _upload(client, {"bio": "new bio", "avatar": (io.BytesIO(b"not an image at all"), "evil.png")})
    assert resp.status_code == 400
    with app.app_context():
        profile = db.session.get(AdvisorProfile, users["advisor"].id)
        assert profile.avatar_key == before and profile.bio == ""


def test_non_advisors_have_no_profile_page(app, users):
    assert signed_in(app, users["mcn"]).get("/account/profile").status_code == 403


def test_missing_avatar_is_404(app, users):
    assert signed_in(app, users["admin"]).get(f"/advisors/{users['advisor'].id}/avatar.jpg").status_code == 404
    assert signed_in(app, users["admin"]).get("/advisors/999999/avatar.jpg").status_code == 404
