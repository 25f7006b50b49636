"""Isolation matrix of the mcn portal: two partners, each with assets, posts and users. A user of one
partner gets 404 for every object of the other on every portal page and action, and reads none of
its titles or post addresses anywhere; mcn users get no studio, compliance or admin page."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from advisor_studio.access import access_rule
from advisor_studio.audit import AuditEntry
from advisor_studio.distribution.models import Assignment, Publication, Takedown
from advisor_studio.extensions import db
from tests.conftest import csrf_from, signed_in
from tests.distribution.portal_helpers import approved_asset, channel, partner_user, withdraw
from tests.distribution.test_portal import confirm_takedown, local, publication_ids, publish
from tests.studio.test_pages import html

A, B = "甲方MCN", "乙方MCN"
B_TITLE = "乙方专属的秘密标题"
B_POST = "https://www.douyin.com/video/424242"
_ARG_RE = re.compile(r"<(?:\w+:)?(\w+)>")


@pytest.fixture
def two_partners(app, users):
    """Partner A with a live asset; partner B with a live asset and a withdrawn one that has a post."""
    a_channel, b_channel = channel(app, A), channel(app, B)
    _a_pkg, (a_asset,) = approved_asset(app, users, [a_channel], title="甲方的视频")
    _b_pkg, (b_live,) = approved_asset(app, users, [b_channel], title=B_TITLE)
    b_ended_pkg, (b_ended,) = approved_asset(app, users, [b_channel], title=B_TITLE + "（已撤回）")
    a_user, b_user = partner_user(app, A), partner_user(app, B)
    a_client, b_client = signed_in(app, a_user), signed_in(app, b_user)
    assert publish(b_client, b_ended, B_POST).status_code == 302
    assert publish(a_client, a_asset, "https://www.douyin.com/video/111").status_code == 302
    withdraw(app, users, b_ended_pkg)
    (b_pub,) = publication_ids(app, b_ended)
    (a_pub,) = publication_ids(app, a_asset)
    return {"a": a_client, "b": b_client, "a_asset": a_asset, "b_assets": [b_live, b_ended], "b_pub": b_pub,
            "a_pub": a_pub, "b_channel": b_channel, "b_user": b_user}


def _b_visible(text: str) -> bool:
    return B_TITLE in text or B_POST in text or B in text


def test_partner_pages_show_nothing_of_another_partner(app, two_partners):
    a = two_partners["a"]
    pages = ["/", "/portal/assets", "/portal/publications", f"/portal/assets/{two_partners['a_asset']}"]
    pages += [f"/portal/assets?status={s}" for s in ("ready", "published", "withdrawn", "expired")]
    pages += [f"/portal/publications?state={s}" for s in ("not_needed", "outstanding", "overdue", "confirmed")]
    for path in pages:
        resp = a.get(path)
        assert resp.status_code == 200, path
        assert not _b_visible(html(resp)), path
    # B's own user does see them: the fixture is real.
    assert B_TITLE in html(two_partners["b"].get("/portal/assets"))
    # Filtering A's list by B's channel is refused, not answered with B's assets.
    resp = a.get(f"/portal/assets?channel={two_partners['b_channel']}")
    assert resp.status_code == 400 and not _b_visible(html(resp))


def test_every_portal_route_with_an_asset_id_answers_404_for_another_partners_asset(app, two_partners):
    a = two_partners["a"]
    token = csrf_from(html(a.get("/portal/assets")))
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("distribution.") and "asset_id" in r.arguments
             and "mcn" in (access_rule(app, r.endpoint) or "")]
    assert {r.endpoint for r in rules} >= {"distribution.asset", "distribution.asset_cover", "distribution.publish",
                                           "distribution.takedown"}
    for rule in rules:
        for asset_id in two_partners["b_assets"]:
            url = _ARG_RE.sub(lambda m, asset_id=asset_id: str(asset_id) if m.group(1) == "asset_id" else "1",
                              rule.rule)
            if "GET" in rule.methods:
                resp = a.get(url)
                assert resp.status_code == 404, url
                assert not _b_visible(html(resp)) and "/files/" not in html(resp), url
            if "POST" in rule.methods:
                resp = a.post(url, data={"csrf_token": token, "post_url": "https://www.douyin.com/video/9",
                                         "published_at": local(datetime.now(UTC)),
                                         "publication_id": str(two_partners["b_pub"]),
                                         "removed_at": local(datetime.now(UTC)), "confirm": "y"})
                assert resp.status_code == 404, url
                assert not _b_visible(html(resp)), url
    with app.app_context():
        b_assets = two_partners["b_assets"]
        assert db.session.scalar(sa.select(sa.func.count(Publication.id))
                                 .where(Publication.assignment_id.in_(b_assets))) == 1
        assert db.session.scalar(sa.select(sa.func.count(Takedown.id))) == 0
        assert db.session.get(Assignment, b_assets[0]).status == "ready"


def test_another_partners_post_cannot_be_confirmed_through_ones_own_asset(app, users, two_partners):
    a = two_partners["a"]
    resp = confirm_takedown(a, two_partners["a_asset"], two_partners["b_pub"])
    assert resp.status_code == 404 and not _b_visible(html(resp))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Takedown.id))) == 0
        assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "portal.foreign_publication",
                                                             AuditEntry.object_id == str(two_partners["b_pub"])))


def test_probing_another_partners_asset_is_audited_and_a_missing_one_is_not(app, two_partners):
    b_asset = two_partners["b_assets"][0]
    assert two_partners["a"].get(f"/portal/assets/{b_asset}").status_code == 404
    assert two_partners["a"].get("/portal/assets/999999").status_code == 404
    with app.app_context():
        probes = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "portal.foreign_asset")).all()
        assert [p.object_id for p in probes] == [str(b_asset)]


def test_a_download_link_names_its_partner_and_a_tampered_one_is_refused(app, two_partners):
    """A cannot obtain a link to B's video (the page is 404); B's link with A's partner id is forged."""
    b_page = html(two_partners["b"].get(f"/portal/assets/{two_partners['b_assets'][0]}"))
    link = re.search(r'src="(/files/[^"]+)"', b_page).group(1)
    payload, rest = link.removeprefix("/files/").split(".", 1)

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["p"]["as"] == two_partners["b_assets"][0] and isinstance(claims["p"]["pt"], int)
    claims["p"]["pt"] += 1  # claim the link for another partner
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    resp = two_partners["a"].get(f"/files/{forged}.{rest}")
    assert resp.status_code == 410
    assert not _b_visible(html(resp))


STAFF_PREFIXES = ("/studio", "/compliance", "/admin", "/audit")


def test_mcn_users_get_no_studio_compliance_or_admin_page(app, users, two_partners):
    """Walk every GET route of those areas with real ids: none may answer 200 to an mcn user."""
    with app.app_context():
        from advisor_studio.compliance.models import Review
        from advisor_studio.video.models import Rendition

        real_id = {
            "review_id": db.session.scalar(sa.select(sa.func.min(Review.id))),
            "rendition_id": db.session.scalar(sa.select(sa.func.min(Rendition.id))),
        }
    checked = 0
    for client in (two_partners["a"], signed_in(app, users["mcn"])):
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or not rule.rule.startswith(STAFF_PREFIXES):
                continue
            url = _ARG_RE.sub(lambda m: str(real_id.get(m.group(1)) or 1), rule.rule)
            resp = client.get(url)
            assert resp.status_code in (403, 404), f"{url} answered {resp.status_code}"
            assert not _b_visible(html(resp)), url
            checked += 1
    assert checked > 40
