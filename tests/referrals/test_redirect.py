"""GET/HEAD /r/<code> per the contract: 302 with a click id, 404/410 pages, what each click records."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.dbtypes import business_day, utcnow
from advisor_studio.extensions import db
from advisor_studio.referrals import clicks
from advisor_studio.referrals import services as referrals
from advisor_studio.referrals.models import Click, ReferralLink
from advisor_studio.studio.models import Package
from tests.studio.test_pages import approved_package, count_queries

BROWSER = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
DEST = "https://kaihu.example.com/open?src=studio"


def make_link(app, advisor_id: int, **kwargs) -> str:
    """A committed link of the advisor; returns its code."""
    with app.app_context():
        owner = db.session.get(User, advisor_id)
        link = referrals.create_link(owner=owner, destination=kwargs.pop("destination", DEST), actor=owner,
                                     **kwargs)
        db.session.commit()
        return link.code


def package_link(app, users, valid_days: int | None = None) -> tuple[str, int]:
    """(code, package id) of a link for an approved package on its channel."""
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id, valid_days=valid_days)
    with app.app_context():
        package = db.session.get(Package, package_id)
        owner = db.session.get(User, users["advisor"].id)
        link = referrals.create_link(owner=owner, destination=DEST, actor=owner, package=package,
                                     channel=package.channels[0], campaign="双十一")
        db.session.commit()
        return link.code, package_id


def stored_clicks(app) -> list[Click]:
    with app.app_context():
        clicks.drain(app)
        rows = db.session.scalars(sa.select(Click).order_by(Click.id)).all()
        db.session.expunge_all()
        return rows


def click_id_of(resp) -> str:
    return parse_qs(urlsplit(resp.headers["Location"]).query)["click_id"][0]


def test_active_link_redirects_with_click_id_utm_and_no_store(app, users, client):
    code = make_link(app, users["advisor"].id, utm={"utm_source": "wechat", "utm_campaign": "spring"})
    resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 302
    assert resp.headers["Cache-Control"] == "no-store"
    location = urlsplit(resp.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "kaihu.example.com", "/open")
    query = parse_qs(location.query)
    assert query["src"] == ["studio"] and query["utm_source"] == ["wechat"] and query["utm_campaign"] == ["spring"]
    click_id = query["click_id"][0]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", click_id)  # 128 random bits, URL-safe
    assert click_id != click_id_of(client.get(f"/r/{code}", headers={"User-Agent": BROWSER}))


def test_redirect_sets_a_first_party_cookie_for_an_hour_on_r_only(app, users, client):
    code = make_link(app, users["advisor"].id)
    resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"rc_{code}={click_id_of(resp)};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/r/" in cookie and "Max-Age=3600" in cookie


def test_click_copies_every_attribution_dimension_and_the_live_approval(app, users, client):
    code, package_id = package_link(app, users)
    resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "203.0.113.77"})
    assert resp.status_code == 302
    [row] = stored_clicks(app)
    with app.app_context():
        link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.code == code))
        from advisor_studio.compliance.services import live_approval

        approval = live_approval(db.session.get(Package, package_id))
        assert (row.link_id, row.advisor_id, row.package_id, row.channel_id, row.partner_id, row.group_id,
                row.campaign) == (link.id, link.owner_id, package_id, link.channel_id, link.partner_id, None,
                                  "双十一")
        assert link.partner_id is not None
    assert row.approval_id == approval.id
    assert row.click_id == click_id_of(resp)
    assert row.day == business_day(row.at) and row.at.tzinfo is not None
    assert row.ip_prefix == "203.0.113.0/24"  # never the full address
    assert (row.is_bot, row.is_head, row.is_duplicate, row.in_app, row.device_class) == (
        False, False, False, "wechat", "mobile")
    assert re.fullmatch(r"[0-9a-f]{32}", row.visitor_hash)


def test_ipv6_address_is_stored_as_its_48_prefix(app, users, client):
    code = make_link(app, users["advisor"].id)
    client.get(f"/r/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "2001:db8:abcd:12::1"})
    [row] = stored_clicks(app)
    assert row.ip_prefix == "2001:db8:abcd::/48"


def test_unknown_code_answers_a_friendly_404_page(app, client):
    resp = client.get("/r/zzzzzzz")
    assert resp.status_code == 404
    body = resp.get_data(as_text=True)
    assert 'data-testid="referral-not-found"' in body and "Traceback" not in body
    assert "Set-Cookie" not in resp.headers  # no session for a passer-by


@pytest.mark.parametrize("code", ["ABC", "abc$%", "abc def", "a" * 17, "a" * 10_240, "0o1il", "ab.png", "%00"])
def test_code_with_odd_characters_or_too_long_is_404_without_a_database_query(app, client, code):
    with count_queries(app) as statements:
        resp = client.get(f"/r/{code}")
    assert resp.status_code == 404
    assert statements == []
    assert "Traceback" not in resp.get_data(as_text=True)


def test_disabled_link_answers_410_and_records_nothing(app, users, client):
    code = make_link(app, users["advisor"].id)
    with app.app_context():
        link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.code == code))
        referrals.set_link_enabled(link, False, actor=db.session.get(User, users["advisor"].id))
        db.session.commit()
    resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 410
    body = resp.get_data(as_text=True)
    assert 'data-testid="referral-gone"' in body and "Traceback" not in body
    assert resp.headers["Cache-Control"] == "no-store"
    assert stored_clicks(app) == []


def test_expired_link_answers_410(app, users, client):
    code = make_link(app, users["advisor"].id, expires_at=utcnow() + timedelta(days=1))
    with app.app_context():
        # Time passes: the expiry is now behind us (the service refuses to set one in the past).
        db.session.execute(sa.update(ReferralLink).where(ReferralLink.code == code)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 410
    assert 'data-testid="referral-gone"' in resp.get_data(as_text=True)


def test_package_link_answers_410_content_withdrawn_within_a_second_on_another_app_instance(
        app, app_factory, users, client):
    code, package_id = package_link(app, users)
    other = app_factory()  # a second process's worth of state: its own link cache
    other_client = other.test_client()
    assert other_client.get(f"/r/{code}", headers={"User-Agent": BROWSER}).status_code == 302  # now cached there
    with app.app_context():
        from advisor_studio.compliance import services as compliance

        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id),
                            "客户投诉")
        db.session.commit()
    time.sleep(1.0)  # the contract's bound; not a speed measurement
    resp = other_client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 410
    body = resp.get_data(as_text=True)
    assert 'data-testid="referral-withdrawn"' in body and "Traceback" not in body
    assert len(stored_clicks(app)) == 1  # the click before the withdrawal only


def test_package_link_whose_approval_expired_answers_410(app, users, client):
    code, _package_id = package_link(app, users, valid_days=0)  # approved, and its period is already over
    resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 410
    assert 'data-testid="referral-withdrawn"' in resp.get_data(as_text=True)


def test_disabling_a_link_takes_effect_within_a_second_although_it_was_cached(app, users, client):
    code = make_link(app, users["advisor"].id)
    assert client.get(f"/r/{code}").status_code == 302
    with app.app_context():
        link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.code == code))
        referrals.set_link_enabled(link, False, actor=db.session.get(User, users["advisor"].id))
        db.session.commit()
    time.sleep(1.0)
    assert client.get(f"/r/{code}").status_code == 410


def test_head_is_redirected_and_recorded_flagged_out_of_counts(app, users, client):
    code = make_link(app, users["advisor"].id)
    resp = client.head(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 302 and "click_id=" in resp.headers["Location"]
    [row] = stored_clicks(app)
    assert row.is_head and row.is_bot


@pytest.mark.parametrize("agent", [GOOGLEBOT, "curl/8.5.0", "python-requests/2.32.3", ""])
def test_known_bots_and_scripts_are_recorded_as_bots(app, users, client, agent):
    code = make_link(app, users["advisor"].id)
    resp = client.get(f"/r/{code}", headers={"User-Agent": agent})
    assert resp.status_code == 302
    [row] = stored_clicks(app)
    assert row.is_bot and not row.is_head and row.device_class == "bot"


def test_repeat_visit_within_the_hour_is_recorded_as_duplicate(app, users, client):
    code = make_link(app, users["advisor"].id)
    first = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    second = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})  # the test client sends the cookie back
    assert second.status_code == 302 and click_id_of(first) != click_id_of(second)
    rows = stored_clicks(app)
    assert [r.is_duplicate for r in rows] == [False, True]
    assert rows[0].visitor_hash == rows[1].visitor_hash


def test_cookie_of_another_code_does_not_make_a_duplicate(app, users, client):
    first = make_link(app, users["advisor"].id)
    second = make_link(app, users["advisor"].id)
    client.get(f"/r/{first}", headers={"User-Agent": BROWSER})
    client.get(f"/r/{second}", headers={"User-Agent": BROWSER})
    assert [r.is_duplicate for r in stored_clicks(app)] == [False, False]


def test_different_networks_are_different_visitors(app, users):
    code = make_link(app, users["advisor"].id)
    for address in ("198.51.100.1", "198.51.100.2", "192.0.2.9"):
        app.test_client().get(f"/r/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": address})
    hashes = [r.visitor_hash for r in stored_clicks(app)]
    assert hashes[0] == hashes[1] != hashes[2]  # same /24 and agent: one visitor


def test_visitor_hash_key_rotates_every_day():
    today = date(2026, 11, 30)
    one = clicks.visitor_hash("k", today, "198.51.100.0/24", BROWSER)
    assert one == clicks.visitor_hash("k", today, "198.51.100.0/24", BROWSER)
    assert one != clicks.visitor_hash("k", today + timedelta(days=1), "198.51.100.0/24", BROWSER)
    assert one != clicks.visitor_hash("other-secret", today, "198.51.100.0/24", BROWSER)


@pytest.mark.parametrize(("agent", "in_app", "device"), [
    (BROWSER, "wechat", "mobile"),
    ("Mozilla/5.0 (Linux; Android 13; V2203A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
     "Chrome/107.0 Mobile Safari/537.36 wxwork/4.1.10 MicroMessenger/7.0.1 Language/zh", "wecom", "mobile"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0 "
     "Safari/537.36 wxwork/4.1.9 (MicroMessenger/6.2) WindowsWechat", "wecom", "desktop"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 aweme_28.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/zh", "douyin", "mobile"),
    ("Mozilla/5.0 (Linux; Android 12; SM-G9910 Build/SP1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Chrome/99.0 Mobile Safari/537.36 BytedanceWebview/d8a21c6", "douyin", "mobile"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 Weibo (iPhone15,2__weibo__13.11.1__iphone__os17.1)", "other", "mobile"),
    ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 "
     "Mobile/15E148 Safari/604.1", "none", "tablet"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
     "Safari/605.1.15", "none", "desktop"),
    (GOOGLEBOT, "none", "bot"),
])
def test_in_app_browser_and_device_class_are_recognised(agent, in_app, device):
    is_bot, found_in_app, found_device = clicks.classify(agent)
    assert (found_in_app, found_device) == (in_app, device)
    assert is_bot == (device == "bot")


def test_a_cached_link_is_redirected_without_any_database_query(app_factory, users):
    app = app_factory(REFERRAL_LINK_CACHE_SECONDS=60)  # long enough that a slow machine still hits the cache
    code = make_link(app, users["advisor"].id)
    client = app.test_client()
    assert client.get(f"/r/{code}", headers={"User-Agent": BROWSER}).status_code == 302
    with count_queries(app) as statements:
        resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 302
    assert statements == []  # the click went to the spool, the link came from the cache


def test_a_very_long_user_agent_is_classified_and_hashed_on_its_first_512_characters(app, users, client):
    code = make_link(app, users["advisor"].id)
    client.get(f"/r/{code}", headers={"User-Agent": BROWSER + "z" * 600 + "x" * 6000})
    client.get(f"/r/{code}", headers={"User-Agent": BROWSER + "z" * 600 + "y" * 6000})  # differs past 512
    rows = stored_clicks(app)
    assert [r.in_app for r in rows] == ["wechat", "wechat"]
    assert rows[0].visitor_hash == rows[1].visitor_hash


@pytest.mark.parametrize("address", ["203.0.113.77", "0.0.0.0",  # noqa: S104 - data, not a bind
                                     "255.255.255.255", "10.1.2.3", "010.1.2.3",
                                     "1.2.3", "1.2.3.4.5", "256.1.1.1", "１.2.3.4", "::ffff:198.51.100.9",
                                     "2001:db8::1", "", None, "not an address", "1.2.3.04"])
def test_ip_prefix_fast_path_agrees_with_truncate_ip(address):
    from advisor_studio.integrity.services import truncate_ip

    assert clicks.ip_prefix(address) == truncate_ip(address)


@pytest.mark.parametrize(("destination", "utm"), [
    ("https://kaihu.example.com/open?src=studio", {"utm_source": "wechat"}),
    ("https://kaihu.example.com/open?click_id=old&a=1#section", {"utm_source": "a b&c", "utm_medium": "群"}),
    ("https://kaihu.example.com/", {}),
])
def test_precomputed_location_equals_destination_with(destination, utm):
    from advisor_studio.referrals.redirect import _Dest, _location_parts

    click_id = clicks.new_click_id()
    before, after = _location_parts(destination, utm)
    assert before + click_id + after == referrals.destination_with(_Dest(destination, utm), click_id)


def test_click_days_are_business_days_in_beijing():
    # 23:30 UTC is 07:30 the next morning in Beijing: the brokerage's back office counts it then.
    from datetime import UTC, date, datetime

    assert business_day(datetime(2026, 11, 29, 23, 30, tzinfo=UTC)) == date(2026, 11, 30)
    assert business_day(datetime(2026, 11, 29, 15, 59, tzinfo=UTC)) == date(2026, 11, 29)
    assert business_day(datetime(2026, 11, 29, 16, 0, tzinfo=UTC)) == date(2026, 11, 30)
