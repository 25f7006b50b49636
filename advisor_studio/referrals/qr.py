"""QR codes of referral links (GET /r/<code>/qr.png and .svg): public, cacheable, made with segno.

A blueprint of its own without a URL prefix, so it sits beside the redirect's /r/<code> route
without either module knowing the other.
"""

from __future__ import annotations

import io

import segno
import sqlalchemy as sa
from flask import Blueprint, Response, abort

from advisor_studio import access
from advisor_studio.extensions import db
from advisor_studio.referrals.models import ReferralLink
from advisor_studio.referrals.services import is_code_shaped, public_url

bp = Blueprint("referral_qr", __name__)

QR_SCALE = 8  # pixels per module: about 3.5 cm printed at 300 dpi for a short URL
QR_BORDER = 4  # the quiet zone the QR standard asks for
# A code's URL never changes (changing a link makes a new code), so the image can be cached for a day.
CACHE_CONTROL = "public, max-age=86400"


def qr_for(code: str) -> segno.QRCode:
    """The QR code of the link ``code``'s public URL; 404 for anything that is not a known code."""
    if not is_code_shaped(code):
        abort(404)
    link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.code == code))
    if link is None:
        abort(404)
    # Error correction M: survives a smudge or a logo sticker on a printed card.
    return segno.make_qr(public_url(link), error="m")


@bp.route("/r/<code>/qr.png")
@access.public
def qr_png(code: str):
    out = io.BytesIO()
    qr_for(code).save(out, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return Response(out.getvalue(), content_type="image/png", headers={"Cache-Control": CACHE_CONTROL})


@bp.route("/r/<code>/qr.svg")
@access.public
def qr_svg(code: str):
    out = io.BytesIO()
    qr_for(code).save(out, kind="svg", scale=QR_SCALE, border=QR_BORDER, xmldecl=False, svgns=True,
                      title=code)
    return Response(out.getvalue(), content_type="image/svg+xml", headers={"Cache-Control": CACHE_CONTROL})
