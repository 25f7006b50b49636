"""QR codes of referral links: public, cacheable PNG and SVG of the link's public URL; 404 otherwise."""

from __future__ import annotations

import io

import segno
from PIL import Image

from advisor_studio.referrals.qr import QR_BORDER, QR_SCALE
from tests.referrals.conftest import make_link


def expected_qr(app, code: str) -> segno.QRCode:
    return segno.make_qr(app.config["PUBLIC_BASE_URL"].rstrip("/") + "/r/" + code, error="m")


def test_png_is_a_valid_png_of_the_links_public_url_size(app, client, link):
    _link_id, code = link
    resp = client.get(f"/r/{code}/qr.png")
    assert resp.status_code == 200
    assert resp.content_type == "image/png"
    assert "public" in resp.headers["Cache-Control"] and "max-age" in resp.headers["Cache-Control"]
    image = Image.open(io.BytesIO(resp.data))
    image.verify()  # a well-formed PNG, not just the magic bytes
    qr = expected_qr(app, code)
    side = (qr.symbol_size(scale=1, border=0)[0] + 2 * QR_BORDER) * QR_SCALE
    assert Image.open(io.BytesIO(resp.data)).size == (side, side)


def test_png_modules_match_the_qr_of_the_public_url(app, client, link):
    """Read the modules back out of the PNG and compare with segno's matrix (segno cannot decode)."""
    _link_id, code = link
    image = Image.open(io.BytesIO(client.get(f"/r/{code}/qr.png").data)).convert("L")
    matrix = expected_qr(app, code).matrix
    for row, cells in enumerate(matrix):
        for col, dark in enumerate(cells):
            x = (QR_BORDER + col) * QR_SCALE + QR_SCALE // 2
            y = (QR_BORDER + row) * QR_SCALE + QR_SCALE // 2
            assert (image.getpixel((x, y)) < 128) == bool(dark), (row, col)


def test_svg_contains_the_qr_path(app, client, link):
    _link_id, code = link
    resp = client.get(f"/r/{code}/qr.svg")
    assert resp.status_code == 200
    assert resp.content_type.startswith("image/svg+xml")
    body = resp.get_data(as_text=True)
    assert body.lstrip().startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in body
    assert "<path" in body and 'd="M' in body
    out = io.BytesIO()
    expected_qr(app, code).save(out, kind="svg", scale=QR_SCALE, border=QR_BORDER, xmldecl=False, svgns=True,
                                title=code)
    assert body == out.getvalue().decode()


def test_qr_is_public_and_served_for_a_disabled_link_too(app, users):
    """The image only encodes the address; the address itself answers 410 once disabled."""
    from advisor_studio.extensions import db
    from advisor_studio.referrals import services
    from advisor_studio.referrals.models import ReferralLink

    link_id, code = make_link(app, users["advisor"].id)
    with app.app_context():
        services.set_link_enabled(db.session.get(ReferralLink, link_id), False, actor=None)
        db.session.commit()
    assert app.test_client().get(f"/r/{code}/qr.png").status_code == 200


def test_unknown_odd_and_long_codes_answer_404(client):
    for code in ["zzzzzzz", "ABC", "a%00b", "0oO1lI", "x" * 10_000, "..%2F..", "%E4%B8%AD"]:
        for kind in ("png", "svg"):
            resp = client.get(f"/r/{code}/qr.{kind}")
            assert resp.status_code == 404, (code, kind)
