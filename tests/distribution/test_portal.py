"""The mcn portal over HTTP: assets, filters, pagination, the asset page, publication reports and
take-down confirmations, the publications list, and compliance's view of take-downs."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.distribution.models import Assignment, Partner, Publication, Takedown
from advisor_studio.distribution.queries import (
    TAKEDOWN_STATES,
    publication_state_clause,
    publication_takedown_state,
)
from advisor_studio.extensions import db
from tests.conftest import csrf_from, signed_in
from tests.distribution.portal_helpers import COVER_BYTES, approved_asset, channel, partner_user, withdraw
from tests.integrity.conftest import follow_presigned
from tests.studio.test_pages import by_testid, count_queries, html

PARTNER = "星河MCN"
POST = "https://www.douyin.com/video/7301"
SHANGHAI = timedelta(hours=8)


def local(moment: datetime) -> str:
    """A datetime-local value in the app's time zone (Asia/Shanghai)."""
    return (moment.astimezone(UTC) + SHANGHAI).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def world(app, users):
    """One partner with two channels, an mcn user of it, and one approved asset on the douyin one."""
    douyin = channel(app, PARTNER, "douyin")
    kuaishou = channel(app, PARTNER, "kuaishou")
    package_id, (asset_id,) = approved_asset(app, users, [douyin])
    user = partner_user(app, PARTNER)
    return {"douyin": douyin, "kuaishou": kuaishou, "package_id": package_id, "asset_id": asset_id, "user": user,
            "client": signed_in(app, user)}


def publish(client, asset_id: int, post_url: str = POST, published_at: str | None = None):
    page = client.get(f"/portal/assets/{asset_id}")
    return client.post(f"/portal/assets/{asset_id}/publications",
                       data={"csrf_token": csrf_from(html(page)), "post_url": post_url,
                             "published_at": published_at or local(datetime.now(UTC))})


def confirm_takedown(client, asset_id: int, publication_id: int, *, confirm: bool = True, removed_at=None):
    page = client.get(f"/portal/assets/{asset_id}")
    data = {"csrf_token": csrf_from(html(page)), "publication_id": str(publication_id),
            "removed_at": removed_at or local(datetime.now(UTC))}
    if confirm:
        data["confirm"] = "y"
    return client.post(f"/portal/assets/{asset_id}/takedowns", data=data)


def publication_ids(app, asset_id: int) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Publication.id).where(Publication.assignment_id == asset_id)
                                       .order_by(Publication.id)))


# --- the list ----------------------------------------------------------------------------------------


def test_asset_list_shows_each_asset_with_chinese_labels_advisor_and_expiry(app, users, world):
    app.config["BABEL_DEFAULT_LOCALE"] = "zh_CN"
    resp = world["client"].get("/portal/assets")
    assert resp.status_code == 200
    cards = by_testid(resp, "asset-card")
    assert len(cards) == 1 and f'data-asset-id="{world["asset_id"]}"' in cards[0]
    text = html(resp)
    assert "资产配置三原则" in text and users["advisor"].sac_number in text
    assert f'/portal/assets/{world["asset_id"]}/cover.jpg' in text
    assert 'data-status="ready"' in text and ">ready<" not in text
    assert 'data-testid="status-count-ready" data-count="1"' in text


def test_mcn_user_without_a_partner_gets_an_explanation_not_an_empty_list(app, users, world):
    client = signed_in(app, users["mcn"])  # has the mcn role, no partner
    for path in ("/portal/assets", "/portal/publications"):
        resp = client.get(path)
        assert resp.status_code == 200
        assert by_testid(resp, "no-partner") and not by_testid(resp, "empty-state")
        assert "资产配置三原则" not in html(resp)
    assert client.get(f"/portal/assets/{world['asset_id']}").status_code == 404


def test_mcn_user_of_a_deactivated_partner_sees_why_nothing_shows(app, world):
    with app.app_context():
        db.session.scalar(sa.select(Partner).where(Partner.name == PARTNER)).active = False
        db.session.commit()
    resp = world["client"].get("/portal/assets")
    assert by_testid(resp, "no-partner") and "资产配置三原则" not in html(resp)
    assert world["client"].get(f"/portal/assets/{world['asset_id']}").status_code == 404


def test_partner_without_assets_sees_an_empty_state_that_says_what_happens_next(app):
    user = partner_user(app, "空MCN")
    resp = signed_in(app, user).get("/portal/assets")
    assert resp.status_code == 200 and by_testid(resp, "empty-state")
    resp = signed_in(app, user).get("/portal/publications")
    assert by_testid(resp, "empty-state")


def test_filters_by_status_and_channel(app, users, world):
    _package, (kuaishou_asset,) = approved_asset(app, users, [world["kuaishou"]], title="长期持有的理由")
    withdraw(app, users, world["package_id"])
    client = world["client"]

    def listed(query: str) -> set[int]:
        resp = client.get("/portal/assets" + query)
        assert resp.status_code == 200
        return {int(re.search(r'data-asset-id="(\d+)"', tag).group(1)) for tag in by_testid(resp, "asset-card")}

    assert listed("") == {world["asset_id"], kuaishou_asset}
    assert listed("?status=withdrawn") == {world["asset_id"]}
    assert listed("?status=ready") == {kuaishou_asset}
    assert listed(f"?channel={world['kuaishou']}") == {kuaishou_asset}
    assert listed(f"?status=withdrawn&channel={world['kuaishou']}") == set()
    resp = client.get(f"/portal/assets?status=withdrawn&channel={world['kuaishou']}")
    assert by_testid(resp, "empty-state") and "filters" in html(resp)
    withdrawn_page = client.get("/portal/assets?status=withdrawn")
    assert by_testid(withdrawn_page, "takedown-due") == []  # no post was reported: nothing to take down
    assert client.get("/portal/assets?status=bogus").status_code == 400
    assert client.get("/portal/assets?channel=999999").status_code == 400  # not one of this partner's channels


def test_pagination_walks_older_pages_by_cursor_and_back_to_the_newest(app, users):
    channels = [channel(app, PARTNER, "douyin") for _ in range(5)]
    _package, ids = approved_asset(app, users, channels)
    client = signed_in(app, partner_user(app, PARTNER))
    app.config["PORTAL_PAGE_SIZE"] = 2
    seen, url = [], "/portal/assets"
    for _ in range(5):
        resp = client.get(url)
        assert resp.status_code == 200
        seen += [int(re.search(r'data-asset-id="(\d+)"', t).group(1)) for t in by_testid(resp, "asset-card")]
        older = by_testid(resp, "older")
        if not older:
            break
        assert by_testid(resp, "asset-card") and len(by_testid(resp, "asset-card")) == 2
        url = re.search(r'href="([^"]+)"', older[0]).group(1).replace("&amp;", "&")
    assert seen == sorted(ids, reverse=True)  # newest first, each exactly once
    assert by_testid(resp, "newest")
    assert client.get("/portal/assets?cursor=not-a-cursor").status_code == 400


# --- the asset page ----------------------------------------------------------------------------------


def test_asset_page_has_player_download_copy_texts_and_the_publication_form(app, world):
    resp = world["client"].get(f"/portal/assets/{world['asset_id']}")
    assert resp.status_code == 200
    video = by_testid(resp, "asset-video")[0]
    download = by_testid(resp, "download")[0]
    assert 'src="/files/' in video and 'href="/files/' in download and "download=" in download
    assert by_testid(resp, "copy-caption") and by_testid(resp, "copy-hashtags") and by_testid(resp, "copy-referral")
    with app.app_context():
        (pinned,) = db.session.get(Assignment, world["asset_id"]).approval.manifest["referral_links"]
    assert re.search(r'data-testid="text-referral">[^<]*/r/' + pinned["code"] + "<", html(resp))
    assert "长期投资" in html(resp) and "#理财" in html(resp)
    assert by_testid(resp, "publication-form") and not by_testid(resp, "takedown-form")
    assert 'type="datetime-local" value="20' in html(resp)  # defaults to now
    # The signed link serves exactly the approved bytes; the cover route serves the cover.
    src = re.search(r'src="([^"]+)"', video).group(1)
    got = world["client"].get(src)
    if got.status_code == 302 and got.location.startswith("http"):  # S3: a presigned GET of at most 60 s
        assert got.headers["Cache-Control"].startswith("private")
        got = follow_presigned(got.location)
        body = got.data
    else:
        body = got.get_data()
        got.close()  # ends the streamed response's context before this test opens its own
    assert got.status_code == 200 and got.headers["Cache-Control"].startswith("private")
    cover = world["client"].get(f"/portal/assets/{world['asset_id']}/cover.jpg")
    if cover.status_code == 302 and cover.location.startswith("http"):  # S3, as above
        cover = follow_presigned(cover.location)
        cover_body = cover.data
    else:
        cover_body = cover.get_data()
        cover.close()
    assert cover.status_code == 200 and cover_body == COVER_BYTES
    with app.app_context():
        rendition = db.session.get(Assignment, world["asset_id"]).package.rendition
        assert hashlib.sha256(body).hexdigest() == rendition.sha256


def test_reporting_a_publication_through_the_form_marks_the_asset_published(app, world):
    resp = publish(world["client"], world["asset_id"])
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/portal/assets/{world['asset_id']}#posts")
    page = world["client"].get(f"/portal/assets/{world['asset_id']}")
    assert len(by_testid(page, "post")) == 1 and POST in html(page)
    assert 'data-state="not_needed"' in html(page)
    with app.app_context():
        assignment = db.session.get(Assignment, world["asset_id"])
        assert assignment.status == "published"
        assert assignment.publications[0].reported_by_user_id == world["user"].id


def test_duplicate_publication_is_refused_with_the_error_next_to_the_post_url(app, world):
    assert publish(world["client"], world["asset_id"]).status_code == 302
    resp = publish(world["client"], world["asset_id"], POST + "#again")
    assert resp.status_code == 409
    field = re.search(r'id="post_url"[^>]*>\s*(?:<div class="form-text">.*?</div>\s*)?<div class="invalid-feedback">'
                      r'([^<]+)</div>', html(resp), re.S)
    assert field and field.group(1).strip()
    assert 'class="form-control is-invalid" id="post_url"' in html(resp)
    assert len(publication_ids(app, world["asset_id"])) == 1


@pytest.mark.parametrize("post_url, published_at, field", [
    ("not a url", None, "post_url"),
    ("https://www.kuaishou.com/short-video/1", None, "post_url"),  # not a douyin address
    (POST, "2031-01-01T10:00", "published_at"),  # years ahead
    (POST, "yesterday", "published_at"),
    ("", None, "post_url"),
])
def test_bad_publication_input_is_shown_next_to_its_field_and_changes_nothing(app, world, post_url, published_at,
                                                                               field):
    resp = publish(world["client"], world["asset_id"], post_url, published_at)
    assert resp.status_code == 400
    assert re.search(rf'is-invalid"[^>]*id="{field}"|id="{field}"[^>]*is-invalid', html(resp)) or \
        f'class="form-control is-invalid" id="{field}"' in html(resp)
    assert publication_ids(app, world["asset_id"]) == []
    with app.app_context():
        assert db.session.get(Assignment, world["asset_id"]).status == "ready"


def test_withdrawn_asset_shows_take_down_forms_and_no_publication_form_or_download(app, users, world):
    publish(world["client"], world["asset_id"])
    publish(world["client"], world["asset_id"], "https://www.douyin.com/video/7302")
    live = world["client"].get(f"/portal/assets/{world['asset_id']}")
    assert not by_testid(live, "takedown-form")
    withdraw(app, users, world["package_id"])
    page = world["client"].get(f"/portal/assets/{world['asset_id']}")
    assert by_testid(page, "ended-notice") and len(by_testid(page, "takedown-form")) == 2
    assert not by_testid(page, "publication-form") and not by_testid(page, "download")
    assert not by_testid(page, "asset-video") and "/files/" not in html(page)
    assert 'data-confirm="' in by_testid(page, "takedown-form")[0]
    # Labels point at their own post's fields.
    first, second = publication_ids(app, world["asset_id"])
    assert f'id="removed_at-{first}"' in html(page) and f'id="removed_at-{second}"' in html(page)
    # Posting to a withdrawn asset changes nothing.
    assert publish(world["client"], world["asset_id"], "https://www.douyin.com/video/7399").status_code == 409
    assert len(publication_ids(app, world["asset_id"])) == 2
    assert world["client"].get(f"/portal/assets/{world['asset_id']}/cover.jpg").status_code == 410


def test_confirming_each_take_down_completes_the_obligation(app, users, world):
    publish(world["client"], world["asset_id"])
    publish(world["client"], world["asset_id"], "https://www.douyin.com/video/7302")
    withdraw(app, users, world["package_id"])
    first, second = publication_ids(app, world["asset_id"])
    resp = confirm_takedown(world["client"], world["asset_id"], first)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"#post-{first}")
    page = world["client"].get(f"/portal/assets/{world['asset_id']}")
    assert len(by_testid(page, "takedown-form")) == 1 and 'data-state="confirmed"' in html(page)
    with app.app_context():
        assert db.session.get(Assignment, world["asset_id"]).takedown_completed_at is None
    assert confirm_takedown(world["client"], world["asset_id"], second).status_code == 302
    with app.app_context():
        assignment = db.session.get(Assignment, world["asset_id"])
        assert assignment.takedown_completed_at is not None
        rows = db.session.scalars(sa.select(Takedown).where(Takedown.assignment_id == assignment.id)).all()
        assert {t.confirmed_by_user_id for t in rows} == {world["user"].id}
    assert by_testid(world["client"].get(f"/portal/assets/{world['asset_id']}"), "takedown-form") == []


def test_take_down_needs_the_confirmation_tick_and_a_sane_time(app, users, world):
    publish(world["client"], world["asset_id"])
    withdraw(app, users, world["package_id"])
    (pub,) = publication_ids(app, world["asset_id"])
    resp = confirm_takedown(world["client"], world["asset_id"], pub, confirm=False)
    assert resp.status_code == 400 and f'id="confirm-{pub}"' in html(resp) and "is-invalid" in html(resp)
    resp = confirm_takedown(world["client"], world["asset_id"], pub, removed_at="2031-01-01T10:00")
    assert resp.status_code == 400 and "is-invalid" in html(resp)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Takedown.id))) == 0


def test_take_down_of_a_live_asset_or_of_another_assets_post_is_refused(app, users, world):
    publish(world["client"], world["asset_id"])
    (pub,) = publication_ids(app, world["asset_id"])
    resp = confirm_takedown(world["client"], world["asset_id"], pub)
    assert resp.status_code == 409 and by_testid(resp, "posts")
    _other_package, (other_asset,) = approved_asset(app, users, [world["kuaishou"]], title="另一个视频")
    assert confirm_takedown(world["client"], other_asset, pub).status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Takedown.id))) == 0


# --- publications list -------------------------------------------------------------------------------


def test_publications_list_shows_take_down_state_and_filters_by_it(app, users, world):
    publish(world["client"], world["asset_id"])
    publish(world["client"], world["asset_id"], "https://www.douyin.com/video/7302")
    _other, (live_asset,) = approved_asset(app, users, [world["kuaishou"]], title="长期持有的理由")
    publish(world["client"], live_asset, "https://www.kuaishou.com/short-video/9")
    withdraw(app, users, world["package_id"])
    first, _second = publication_ids(app, world["asset_id"])
    confirm_takedown(world["client"], world["asset_id"], first)
    client = world["client"]

    def states(query: str = "") -> list[str]:
        resp = client.get("/portal/publications" + query)
        assert resp.status_code == 200
        return sorted(re.findall(r'data-testid="takedown-state" data-state="(\w+)"', html(resp)))

    assert states() == ["confirmed", "not_needed", "outstanding"]
    assert states("?state=outstanding") == ["outstanding"]
    assert states("?state=confirmed") == ["confirmed"]
    assert states(f"?channel={world['kuaishou']}") == ["not_needed"]
    assert states("?state=overdue") == []
    assert client.get("/portal/publications?state=nope").status_code == 400
    # Past the deadline the outstanding post is overdue.
    with app.app_context():
        db.session.get(Assignment, world["asset_id"]).takedown_due_at = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
    assert states("?state=overdue") == ["overdue"]


def test_publication_state_in_python_and_sql_agree(app, users, world):
    publish(world["client"], world["asset_id"])
    publish(world["client"], world["asset_id"], "https://www.douyin.com/video/7302")
    _other, (live_asset,) = approved_asset(app, users, [world["kuaishou"]], title="长期持有的理由")
    publish(world["client"], live_asset, "https://www.kuaishou.com/short-video/9")
    withdraw(app, users, world["package_id"])
    confirm_takedown(world["client"], world["asset_id"], publication_ids(app, world["asset_id"])[0])
    with app.app_context():
        for now in (datetime.now(UTC), datetime.now(UTC) + timedelta(days=3)):
            for pub in db.session.scalars(sa.select(Publication)).all():
                in_sql = {state for state in TAKEDOWN_STATES if db.session.scalar(
                    sa.select(Publication.id).join(Assignment, Assignment.id == Publication.assignment_id)
                    .where(Publication.id == pub.id, publication_state_clause(state, now)))}
                assert in_sql == {publication_takedown_state(pub, now)}


def test_publications_list_paginates(app, users, world):
    for n in range(4):
        publish(world["client"], world["asset_id"], f"https://www.douyin.com/video/80{n}")
    from advisor_studio.distribution import portal_routes

    old = portal_routes.PUBLICATIONS_PER_PAGE
    portal_routes.PUBLICATIONS_PER_PAGE = 3
    try:
        first = world["client"].get("/portal/publications")
        second = world["client"].get("/portal/publications?page=2")
    finally:
        portal_routes.PUBLICATIONS_PER_PAGE = old
    assert len(by_testid(first, "publication-row")) == 3 and len(by_testid(second, "publication-row")) == 1
    assert world["client"].get("/portal/publications?page=0").status_code == 400


# --- compliance's view -------------------------------------------------------------------------------


def test_compliance_landing_lists_overdue_take_downs_with_partner_channel_and_outstanding_posts(app, users, world):
    officer = signed_in(app, users["compliance"])
    resp = officer.get("/")
    assert by_testid(resp, "overdue-takedowns") and 'data-testid="overdue-takedowns-count">0<' in html(resp)
    publish(world["client"], world["asset_id"])
    publish(world["client"], world["asset_id"], "https://www.douyin.com/video/7302")
    withdraw(app, users, world["package_id"])
    confirm_takedown(world["client"], world["asset_id"], publication_ids(app, world["asset_id"])[0])
    assert len(by_testid(officer.get("/"), "overdue-takedown")) == 0  # deadline still ahead
    with app.app_context():
        db.session.get(Assignment, world["asset_id"]).takedown_due_at = datetime.now(UTC) - timedelta(hours=1)
        db.session.commit()
    resp = officer.get("/")
    rows = by_testid(resp, "overdue-takedown")
    assert len(rows) == 1 and f'data-assignment-id="{world["asset_id"]}"' in rows[0]
    row_html = html(resp).split(rows[0])[1].split("</li>")[0]
    assert PARTNER in row_html and "资产配置三原则" in row_html
    assert 'data-testid="posts-outstanding" data-count="1"' in row_html
    # Other roles' landing pages do not show the panel.
    assert not by_testid(world["client"].get("/"), "overdue-takedowns")


def test_package_pages_show_distribution_with_overdue_badge_to_compliance(app, users, world):
    publish(world["client"], world["asset_id"])
    withdraw(app, users, world["package_id"])
    with app.app_context():
        db.session.get(Assignment, world["asset_id"]).takedown_due_at = datetime.now(UTC) - timedelta(hours=1)
        db.session.commit()
        from advisor_studio.compliance.models import Review

        review_id = db.session.scalar(sa.select(Review.id).where(Review.package_id == world["package_id"]))
    officer = signed_in(app, users["compliance"])
    for path in (f"/studio/packages/{world['package_id']}", f"/compliance/reviews/{review_id}"):
        resp = officer.get(path)
        assert resp.status_code == 200
        assert by_testid(resp, "package-distribution") and len(by_testid(resp, "package-assignment")) == 1
        assert by_testid(resp, "overdue-badge") and POST in html(resp)


def test_package_distribution_section_costs_the_same_queries_for_more_channels_and_posts(app, users):
    officer = signed_in(app, users["compliance"])
    small_channels = [channel(app, PARTNER, "douyin")]
    big_channels = [channel(app, PARTNER, "douyin") for _ in range(3)] + [channel(app, "第二MCN", "douyin")]
    small_pkg, _ = approved_asset(app, users, small_channels, title="一")
    big_pkg, big_ids = approved_asset(app, users, big_channels, title="二")
    client = signed_in(app, partner_user(app, PARTNER))
    for n, asset_id in enumerate(big_ids[:3]):
        publish(client, asset_id, f"https://www.douyin.com/video/9{n}")
    officer.get(f"/studio/packages/{small_pkg}")  # warm caches
    with count_queries(app) as small:
        assert officer.get(f"/studio/packages/{small_pkg}").status_code == 200
    with count_queries(app) as big:
        assert officer.get(f"/studio/packages/{big_pkg}").status_code == 200
    assert len(big) == len(small)


def test_asset_and_publication_lists_cost_the_same_queries_for_one_row_or_many(app, users):
    channels = [channel(app, PARTNER, "douyin") for _ in range(5)]
    _pkg, (first,) = approved_asset(app, users, channels[:1])
    client = signed_in(app, partner_user(app, PARTNER))
    publish(client, first)
    client.get("/portal/assets")  # warm caches

    def costs() -> tuple[int, int]:
        with count_queries(app) as assets:
            assert client.get("/portal/assets").status_code == 200
        with count_queries(app) as posts:
            assert client.get("/portal/publications").status_code == 200
        return len(assets), len(posts)

    one = costs()
    _pkg, more = approved_asset(app, users, channels[1:], title="二")
    for n, asset_id in enumerate(more):
        publish(client, asset_id, f"https://www.douyin.com/video/6{n}")
    assert costs() == one


def test_pages_may_load_media_from_the_buckets_origin_and_nowhere_else(app, world):
    # On S3 the player and covers follow a redirect to a presigned URL; the page's policy names that
    # origin alone (local storage serves everything from 'self').
    csp = world["client"].get("/portal/assets").headers["Content-Security-Policy"]
    origin = app.extensions["storage"].direct_origin()
    media = next(part for part in csp.split(";") if part.strip().startswith("media-src")).split()
    assert media == ["media-src", "'self'", "blob:"] + ([origin] if origin else [])
    if origin:
        assert origin.startswith("http") and origin.count("/") == 2


def test_mcn_landing_counts_assets_to_publish_and_posts_to_take_down(app, users):
    from advisor_studio.distribution import services
    from tests.conftest import record_of
    from tests.factories import make_user

    with app.app_context():
        loner = record_of(make_user("mcn"))
        db.session.commit()
    assert by_testid(signed_in(app, loner).get("/"), "landing-mcn-unlinked")
    user = partner_user(app, "落地页MCN")
    first = channel(app, "落地页MCN")
    package_id, (asset_id,) = approved_asset(app, users, [first])
    approved_asset(app, users, [channel(app, "落地页MCN")], title="长期投资的逻辑")
    client = signed_in(app, user)
    assert 'data-count="2"' in by_testid(client.get("/"), "landing-mcn-ready")[0]
    with app.app_context():
        services.report_publication(db.session.get(Assignment, asset_id), platform="douyin",
                                    post_url="https://www.douyin.com/video/42", published_at=datetime.now(UTC),
                                    actor="test")
        db.session.commit()
    withdraw(app, users, package_id)
    card = by_testid(client.get("/"), "landing-mcn-takedowns")[0]
    assert 'data-count="1"' in card and 'data-overdue="0"' in card and "state=outstanding" in card
    with app.app_context():
        db.session.get(Assignment, asset_id).takedown_due_at = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
    card = by_testid(client.get("/"), "landing-mcn-takedowns")[0]
    assert 'data-count="1"' in card and 'data-overdue="1"' in card and "state=overdue" in card
