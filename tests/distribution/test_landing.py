"""The mcn landing page lists the partner's assets to publish and to take down, each opening for this
user, or says honestly that there is nothing (and why); never a promise of content that is not there."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from advisor_studio.distribution import services
from advisor_studio.distribution.models import Assignment, Partner
from advisor_studio.extensions import db
from tests.conftest import signed_in
from tests.distribution.portal_helpers import approved_asset, channel, partner_user, withdraw
from tests.studio.test_pages import attr, by_testid, count_queries


def landing_asset_links(resp) -> list[str]:
    return re.findall(r'href="(/portal/assets/\d+)"', resp.get_data(as_text=True))


def test_a_partner_without_assets_gets_an_honest_empty_state(app, users):
    client = signed_in(app, partner_user(app, "空MCN"))
    channel(app, "空MCN")
    resp = client.get("/")
    assert by_testid(resp, "landing-mcn-empty") and attr(by_testid(resp, "landing-mcn-ready")[0], "data-count") == "0"
    assert not by_testid(resp, "landing-mcn-item") and landing_asset_links(resp) == []
    assert "空MCN" in resp.get_data(as_text=True)


def test_assets_to_publish_are_listed_and_each_opens_for_the_partner(app, users):
    user = partner_user(app, "落地MCN")
    first, second = channel(app, "落地MCN"), channel(app, "落地MCN", "kuaishou")
    _package, (asset_a,) = approved_asset(app, users, [first], title="资产配置三原则")
    _package, (asset_b,) = approved_asset(app, users, [second], title="长期投资的逻辑")
    client = signed_in(app, user)
    resp = client.get("/")
    listed = [int(attr(tag, "data-asset-id")) for tag in by_testid(resp, "landing-mcn-item")]
    assert listed == [asset_b, asset_a]  # newest first
    for path in landing_asset_links(resp):
        assert client.get(path).status_code == 200, path
    # Another partner's mcn user sees none of them.
    other = signed_in(app, partner_user(app, "别家MCN"))
    assert not by_testid(other.get("/"), "landing-mcn-item")


def test_posts_to_take_down_are_listed_with_their_asset(app, users):
    user = partner_user(app, "撤回MCN")
    package_id, (asset_id,) = approved_asset(app, users, [channel(app, "撤回MCN")])
    with app.app_context():
        services.report_publication(db.session.get(Assignment, asset_id), platform="douyin",
                                    post_url="https://www.douyin.com/video/7", published_at=datetime.now(UTC),
                                    actor="test")
        db.session.commit()
    withdraw(app, users, package_id)
    client = signed_in(app, user)
    resp = client.get("/")
    [item] = by_testid(resp, "landing-mcn-takedown-item")
    assert attr(item, "data-asset-id") == str(asset_id)
    assert attr(by_testid(resp, "landing-mcn-ready")[0], "data-count") == "0"
    assert by_testid(resp, "landing-mcn-nothing-new")  # it had assets; none is waiting now
    assert client.get(f"/portal/assets/{asset_id}").status_code == 200


def test_an_inactive_partner_is_said_so_instead_of_listing_assets(app, users):
    user = partner_user(app, "停用MCN")
    approved_asset(app, users, [channel(app, "停用MCN")])
    with app.app_context():
        partner = db.session.scalars(db.select(Partner).where(Partner.name == "停用MCN")).one()
        partner.active = False
        db.session.commit()
    resp = signed_in(app, user).get("/")
    assert by_testid(resp, "landing-mcn-inactive") and not by_testid(resp, "landing-mcn-item")


def test_the_landing_costs_the_same_queries_with_one_or_many_assets(app, users):
    user = partner_user(app, "计数MCN")
    approved_asset(app, users, [channel(app, "计数MCN")])
    client = signed_in(app, user)
    client.get("/")
    with count_queries(app) as few:
        client.get("/")
    for n in range(3):
        approved_asset(app, users, [channel(app, "计数MCN")], title=f"第{n}期")
    with count_queries(app) as many:
        assert len(by_testid(client.get("/"), "landing-mcn-item")) == 4
    assert len(many) == len(few)
