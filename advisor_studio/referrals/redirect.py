"""GET/HEAD /r/<code>: the public referral redirect (contract "Referral redirect"), the hot path.

Per request: a shape check of the code (no database for garbage), the link from a per-process cache
whose entries live at most ``REFERRAL_LINK_CACHE_SECONDS`` (0.5 s, so a disabled link or a withdrawn
package answers 410 within a second on every process), one spooled line (clicks.record), the 302.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template, request

from advisor_studio.access import public
from advisor_studio.compliance import approvals
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db, limiter
from advisor_studio.referrals import clicks
from advisor_studio.referrals.models import ReferralLink
from advisor_studio.referrals.services import destination_with, is_code_shaped
from advisor_studio.referrals.services import link_is_live as is_link_live

bp = Blueprint("redirect", __name__)


def _is_redirect() -> bool:
    return request.blueprint == "redirect"


# No rate limit on the redirect, ever: a limited click would be a lost click (bots are recorded and
# flagged instead). Filtered out up front, so the limiter does not resolve its (empty) limits per click.
limiter.request_filter(_is_redirect)

CACHE_MAX = 20_000  # codes per process; past it the cache starts over (a flood of distinct codes)
COOKIE_PREFIX = "rc_"
COOKIE_SECONDS = 3600

_LINK_COLUMNS = (ReferralLink.id, ReferralLink.code, ReferralLink.owner_id, ReferralLink.package_id,
                 ReferralLink.channel_id, ReferralLink.partner_id, ReferralLink.group_id, ReferralLink.campaign,
                 ReferralLink.destination, ReferralLink.utm, ReferralLink.enabled, ReferralLink.expires_at,
                 ReferralLink.replaced_by_id)


class _Dest:
    """Just what services.destination_with reads from a link."""

    __slots__ = ("destination", "utm")

    def __init__(self, destination: str, utm: dict):
        self.destination, self.utm = destination, utm


_MARK = "CLICKIDMARK"  # URL-safe, so urlencode leaves it (and a real click id) as it is


def _location_parts(destination: str, utm: dict) -> tuple[str, str]:
    """services.destination_with split around the click id, built once per cached link: the hot path
    then only concatenates (a click id is URL-safe and needs no escaping)."""
    before, _mark, after = destination_with(_Dest(destination, utm), _MARK).partition(_MARK)
    return before, after


def _load(code: str) -> dict | None:
    """The link's snapshot (with its package's live approval, if it names a package) or None."""
    row = db.session.execute(sa.select(*_LINK_COLUMNS).where(ReferralLink.code == code)).mappings().first()
    if row is None:
        return None
    link = dict(row)
    link["approval_id"] = link["approval_expires_at"] = None
    if link["package_id"] is not None:
        approval = approvals.live_approvals_by_package([link["package_id"]]).get(link["package_id"])
        if approval is not None:
            link["approval_id"], link["approval_expires_at"] = approval.id, approval.expires_at
    link["location"] = _location_parts(link["destination"], link["utm"] or {})
    return link


def _cached_link(code: str) -> dict | None:
    cache = current_app.extensions.setdefault("referral_link_cache", {})
    now = time.monotonic()
    entry = cache.get(code)
    if entry is not None and entry[0] > now:
        return entry[1]
    link = _load(code)
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[code] = (now + float(current_app.config.get("REFERRAL_LINK_CACHE_SECONDS", 0.5)), link)
    return link


def _page(template: str, status: int, **context) -> Response:
    resp = Response(render_template(template, **context), status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/r/<code>", methods=["GET", "HEAD"])
@public
def follow(code: str):
    """Record the click and send the visitor on to the account-opening page."""
    if not is_code_shaped(code):  # odd characters, slashes, 10 KB: not a code, no database query
        return _page("referrals/not_found.html", 404)
    link = _cached_link(code)
    if link is None:
        return _page("referrals/not_found.html", 404)
    now = utcnow()
    if not is_link_live(link["enabled"], link["expires_at"], link["replaced_by_id"], now):
        return _page("referrals/gone.html", 410, withdrawn=False)
    if link["package_id"] is not None and (link["approval_id"] is None or link["approval_expires_at"] <= now):
        return _page("referrals/gone.html", 410, withdrawn=True)

    cookie_name = COOKIE_PREFIX + code
    previous = request.cookies.get(cookie_name, "")
    click_id = clicks.new_click_id()
    row = clicks.click_row(
        link=link, approval_id=link["approval_id"], click_id=click_id, at=now, address=request.remote_addr,
        ua=request.headers.get("User-Agent", ""), is_head=request.method == "HEAD",
        is_duplicate=bool(clicks.CLICK_ID_RE.match(previous)), secret=current_app.config["SECRET_KEY"])
    clicks.record(row)  # durable before the 302 leaves: no 302 without its click
    resp = Response(status=302)
    before, after = link["location"]
    resp.headers["Location"] = before + click_id + after  # == destination_with(link, click_id)
    resp.headers["Cache-Control"] = "no-store"
    # What set_cookie(max_age=3600, path="/r/", httponly=True, samesite="Lax") writes, minus the
    # redundant Expires date; the name and value are URL-safe by construction.
    secure = "; Secure" if current_app.config.get("SESSION_COOKIE_SECURE") else ""
    resp.headers.add("Set-Cookie", f"{cookie_name}={click_id}; Max-Age={COOKIE_SECONDS}; HttpOnly; Path=/r/; "
                                   f"SameSite=Lax{secure}")
    return resp
