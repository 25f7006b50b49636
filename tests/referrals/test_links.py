"""Referral links: the destination allow-list against open-redirect tricks, creating links on the page,
replace_link keeping history, bulk creation, enable/disable, counts, CSV export and isolation."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import services
from advisor_studio.referrals.models import Click, CommunityGroup, Conversion, Customer, ReferralLink
from advisor_studio.studio.models import Package
from tests.conftest import csrf_from, post_form, signed_in
from tests.referrals.conftest import DEST, make_group, make_link
from tests.studio.test_pages import approved_package, package_for

# --- the allow-list -----------------------------------------------------------------------------

REFUSED = [
    "https://kaihu.example.com@evil.com/",  # userinfo: the host is evil.com
    "https://kaihu.example.com\\@evil.com/",  # backslash: browsers read it as a path separator
    "https://evil.com\\kaihu.example.com/",
    "https://user:pw@kaihu.example.com/",  # any userinfo at all
    "https://kaihu.exаmple.com/",  # Cyrillic а: an IDN look-alike
    "https://xn--kaihu-xxa.example.com/",  # punycode of some other host
    "https://ｋａｉｈｕ.example.com/",  # full-width letters (NFKC would fold them)
    "//evil.com/",
    "//kaihu.example.com/",  # scheme-relative: no scheme is not https
    "javascript:alert(1)",
    "JaVaScRiPt://kaihu.example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://kaihu.example.com/",  # scheme change to plain http
    "ftp://kaihu.example.com/",
    "https://kaihu.example.com:8443/",  # another port
    "https://kaihu.example.com:0/",
    "https://kaihu.example.com:99999/",
    "https://kaihu.example.com.evil.com/",  # trailing labels
    "https://evilkaihu.example.com/",
    "https://example.com/",
    "https://kaihu.example.com./",  # trailing dot: another name as far as certificates go
    "https:/kaihu.example.com/",
    "https:kaihu.example.com",
    "https://kaihu.example.com/\r\nSet-Cookie: x=1",
    "https://kaihu.example.com/\x00",
    " https://kaihu.example.com/ x",
    "https://" + "a" * 2000,
    "/open",
    "",
]
ALLOWED = [
    "https://kaihu.example.com/",
    "https://kaihu.example.com",
    "https://KAIHU.EXAMPLE.COM/open?branch=bj",  # upper-case host is the same host
    "https://kaihu.example.com:443/open",
    "https://kaihu.example.com/open?next=https://evil.com",  # a query is not a host
    "https://kaihu.example.com/open#section",
]


@pytest.mark.parametrize("url", REFUSED)
def test_destination_refuses_open_redirect_tricks(app_ctx, url):
    with pytest.raises(ValidationError) as caught:
        services.validate_destination(url)
    assert "destination" in caught.value.fields


@pytest.mark.parametrize("url", ALLOWED)
def test_destination_allows_the_allow_listed_host(app_ctx, url):
    assert services.validate_destination(url) == url


def test_a_refused_destination_on_the_page_stores_nothing(app, users):
    client = signed_in(app, users["advisor"])
    for url in ["https://kaihu.example.com@evil.com/", "//evil.com", "javascript:alert(1)"]:
        resp = post_form(client, "/referrals/links/new", {"host": "kaihu.example.com", "path": "/",
                                                          "destination": url})
        assert resp.status_code == 400
    resp = post_form(client, "/referrals/links/new", {"host": "evil.com", "path": "/"})
    assert resp.status_code == 400  # not one of the select's choices
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReferralLink)) == 0


# --- creating links on the page ------------------------------------------------------------------


def test_advisor_creates_a_group_link_with_utm_and_expiry(app, users, group_id):
    client = signed_in(app, users["advisor"])
    day = (utcnow() + timedelta(days=10)).date()
    resp = post_form(client, "/referrals/links/new", {
        "group_id": str(group_id), "campaign": "双十一", "host": "kaihu.example.com", "path": "open?branch=bj",
        "utm_source": "wecom", "utm_medium": "group", "expires_on": day.isoformat()})
    assert resp.status_code == 302
    with app.app_context():
        link = db.session.scalars(sa.select(ReferralLink)).one()
        assert (link.kind, link.group_id, link.campaign, link.destination, link.utm) == (
            "group", group_id, "双十一", "https://kaihu.example.com/open?branch=bj",
            {"utm_source": "wecom", "utm_medium": "group"})
        assert link.expires_at > utcnow() and link.enabled
        assert services.is_code_shaped(link.code)
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"/r/{link.code}/qr.svg" in page and 'data-testid="clicks-chart"' in page


def test_package_link_needs_an_approved_package_of_ones_own(app, users):
    approved_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    draft_id = package_for(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    with app.app_context():
        channel_id = db.session.get(Package, approved_id).channels[0].id
    base = {"host": "kaihu.example.com", "path": "/open"}
    with app.app_context():  # the package links its submission pinned in the manifest
        pinned = set(db.session.scalars(sa.select(ReferralLink.id)))
    # A draft package is not a choice of the select: refused, nothing stored.
    assert post_form(client, "/referrals/links/new", {**base, "package_id": str(draft_id)}).status_code == 400
    # Nor is another advisor's approved package.
    other = signed_in(app, users["advisor2"])
    assert post_form(other, "/referrals/links/new", {**base, "package_id": str(approved_id)}).status_code == 400
    # A channel without its package would attribute clicks to no content.
    assert post_form(client, "/referrals/links/new", {**base, "channel_id": str(channel_id)}).status_code == 400
    resp = post_form(client, "/referrals/links/new", {**base, "package_id": str(approved_id),
                                                      "channel_id": str(channel_id)})
    assert resp.status_code == 302
    with app.app_context():
        link = db.session.scalars(sa.select(ReferralLink).where(ReferralLink.id.not_in(pinned))).one()
        assert (link.kind, link.package_id, link.channel_id) == ("package", approved_id, channel_id)
        assert link.partner_id == db.session.get(Package, approved_id).channels[0].partner_id


# --- replace_link -----------------------------------------------------------------------------------


def test_replace_link_makes_a_new_link_and_keeps_the_old_one_with_its_clicks(app, users, group_id):
    link_id, code = make_link(app, users["advisor"].id, group_id=group_id, campaign="春季")
    with app.app_context():
        old = db.session.get(ReferralLink, link_id)
        db.session.add(Click(click_id="c" * 20, at=utcnow(), day=utcnow().date(), link_id=old.id,
                             advisor_id=old.owner_id, group_id=group_id, campaign="春季", visitor_hash="v"))
        db.session.commit()
        actor = db.session.get(User, users["advisor"].id)
        new = services.replace_link(old, actor, destination="https://kaihu.example.com/v2", campaign="夏季")
        db.session.commit()
        assert new.id != old.id and new.code != old.code
        assert (new.destination, new.campaign, new.group_id, new.owner_id) == (
            "https://kaihu.example.com/v2", "夏季", group_id, old.owner_id)
        old = db.session.get(ReferralLink, link_id)
        assert (old.enabled, old.replaced_by_id, old.destination, old.campaign) == (
            False, new.id, DEST, "春季")  # the old link's meaning is unchanged
        assert db.session.scalar(sa.select(Click.link_id)) == link_id  # history stays on the old link
        # Nothing changed: the same link back, nothing new stored.
        assert services.replace_link(new, actor, campaign="夏季") is new
        # A replaced link cannot be replaced again (edit the newest).
        with pytest.raises(Conflict):
            services.replace_link(old, actor, campaign="秋季")
        with pytest.raises(ValidationError):
            services.replace_link(new, actor, destination="https://evil.com/")
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReferralLink)) == 2


def test_editing_on_the_page_replaces_the_link_and_shows_its_versions(app, users, link):
    link_id, code = link
    client = signed_in(app, users["advisor"])
    resp = post_form(client, f"/referrals/links/{link_id}/edit", {
        "host": "kaihu.example.com", "path": "/", "destination": "https://kaihu.example.com/new", "campaign": "双十一"})
    assert resp.status_code == 302
    new_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert new_id != link_id
    page = client.get(f"/referrals/links/{new_id}").get_data(as_text=True)
    assert 'data-testid="link-history"' in page and code in page
    # Editing the old one sends you to the newest.
    resp = client.get(f"/referrals/links/{link_id}/edit")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/referrals/links/{new_id}")


# --- bulk -------------------------------------------------------------------------------------------


def test_bulk_makes_one_link_per_active_group_in_one_action(app, users):
    first = make_group(app, users["advisor"].id, name="一群")
    second = make_group(app, users["advisor"].id, name="二群")
    archived = make_group(app, users["advisor"].id, name="旧群")
    make_group(app, users["advisor2"].id, name="别人的群")
    with app.app_context():
        from advisor_studio.referrals import groups as group_services

        group_services.archive_group(db.session.get(CommunityGroup, archived), actor=None)
        db.session.commit()
    client = signed_in(app, users["advisor"])
    resp = post_form(client, "/referrals/links/bulk", {"target": "groups", "host": "kaihu.example.com",
                                                       "path": "/open", "campaign": "月度"})
    assert resp.status_code == 302
    with app.app_context():
        links = db.session.scalars(sa.select(ReferralLink).order_by(ReferralLink.group_id)).all()
        assert [(link.group_id, link.kind, link.campaign) for link in links] == [
            (first, "group", "月度"), (second, "group", "月度")]
        assert len({link.code for link in links}) == 2


def test_bulk_is_all_or_nothing(app, users):
    make_group(app, users["advisor"].id, name="一群")
    with app.app_context():
        owner = db.session.get(User, users["advisor"].id)
        with pytest.raises(ValidationError):  # a bad UTM value fails the whole batch
            services.bulk_links_for_groups(owner=owner, actor=owner, destination=DEST, utm={"utm_source": "x" * 200})
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReferralLink)) == 0
    # Without active groups the page says what to do.
    client = signed_in(app, users["advisor2"])
    resp = post_form(client, "/referrals/links/bulk", {"target": "groups", "host": "kaihu.example.com", "path": "/"})
    assert resp.status_code == 400


def test_bulk_makes_one_link_per_channel_of_an_approved_package(app, users):
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    with app.app_context():  # the package links its submission pinned in the manifest
        pinned = set(db.session.scalars(sa.select(ReferralLink.id)))
    resp = post_form(client, "/referrals/links/bulk", {"target": "channels", "package_id": str(package_id),
                                                       "host": "kaihu.example.com", "path": "/"})
    assert resp.status_code == 302
    with app.app_context():
        package = db.session.get(Package, package_id)
        links = db.session.scalars(sa.select(ReferralLink).where(ReferralLink.id.not_in(pinned))).all()
        assert sorted(link.channel_id for link in links) == [c.id for c in package.channels]
        assert all(link.package_id == package_id and link.kind == "package" for link in links)
    resp = post_form(client, "/referrals/links/bulk", {"target": "channels", "host": "kaihu.example.com", "path": "/"})
    assert resp.status_code == 400  # no package chosen


# --- enable / disable -------------------------------------------------------------------------------


def test_disabling_needs_confirmation_and_enabling_again_works(app, users, link):
    link_id, _code = link
    client = signed_in(app, users["advisor"])
    detail = f"/referrals/links/{link_id}"
    post_form(client, f"{detail}/enabled", {"enabled": "0"}, form_page=detail)
    with app.app_context():
        assert db.session.get(ReferralLink, link_id).enabled
    post_form(client, f"{detail}/enabled", {"enabled": "0", "confirm": "y"}, form_page=detail)
    with app.app_context():
        link = db.session.get(ReferralLink, link_id)
        assert not link.enabled and link.disabled_at is not None
    post_form(client, f"{detail}/enabled", {"enabled": "1"}, form_page=detail)
    with app.app_context():
        assert db.session.get(ReferralLink, link_id).enabled


# --- counts and export --------------------------------------------------------------------------------


def _add_clicks_and_conversions(app, link_id: int) -> None:
    with app.app_context():
        link = db.session.get(ReferralLink, link_id)
        now = utcnow()
        for i, bot in enumerate([False, False, False, True]):
            at = now - timedelta(days=i)
            db.session.add(Click(click_id=f"click{i:015d}", at=at, day=at.date(), link_id=link.id,
                                 advisor_id=link.owner_id, is_bot=bot, visitor_hash=f"v{i}"))
        customer = Customer(ref_hash="h" * 64, link_id=link.id)
        db.session.add(customer)
        db.session.flush()
        for i, event in enumerate(["signup", "account_opened", "funded"]):
            db.session.add(Conversion(idempotency_key=f"k{i}", body_sha256="0" * 64, response={}, event=event,
                                      customer_id=customer.id, occurred_at=now, day=now.date(),
                                      amount=100 if event == "funded" else None, link_id=link.id,
                                      advisor_id=link.owner_id))
        db.session.commit()


def test_my_links_shows_human_clicks_and_conversions_in_constant_queries(app, users):
    from tests.studio.test_pages import count_queries

    ids = [make_link(app, users["advisor"].id)[0] for _ in range(2)]
    _add_clicks_and_conversions(app, ids[0])
    client = signed_in(app, users["advisor"])
    client.get("/referrals/links")
    with count_queries(app) as few:
        page = client.get("/referrals/links").get_data(as_text=True)
    for _ in range(5):
        make_link(app, users["advisor"].id)
    with count_queries(app) as many:
        client.get("/referrals/links")
    assert len(many) == len(few)  # no query per link
    rows = re.findall(r'data-testid="clicks">(\d+)<', page)
    assert sorted(rows) == ["0", "3"]  # the bot click is not counted
    detail = client.get(f"/referrals/links/{ids[0]}").get_data(as_text=True)
    assert 'data-testid="event-account_opened">1<' in detail and 'data-testid="clicks">3<' in detail
    assert detail.count('<rect x=') == 30


def test_csv_export_has_bom_the_lists_filters_and_counts(app, users, group_id):
    in_group, _code = make_link(app, users["advisor"].id, group_id=group_id, campaign="=cmd|' /C calc'!A0")
    make_link(app, users["advisor"].id, campaign="其他")
    make_link(app, users["advisor2"].id, campaign="别人的")
    _add_clicks_and_conversions(app, in_group)
    client = signed_in(app, users["advisor"])
    resp = client.get(f"/referrals/links/export.csv?group={group_id}")
    assert resp.status_code == 200 and resp.content_type.startswith("text/csv")
    assert resp.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["campaign"].startswith("'=")  # never a formula in Excel
    assert (rows[0]["clicks"], rows[0]["account_opened"], rows[0]["funded"]) == ("3", "1", "1")
    everything = list(csv.DictReader(io.StringIO(client.get("/referrals/links/export.csv").data.decode("utf-8-sig"))))
    assert len(everything) == 2  # only the advisor's own, even unfiltered
    admin_rows = list(csv.DictReader(io.StringIO(signed_in(app, users["admin"]).get(
        f"/referrals/links/export.csv?owner={users['advisor2'].id}").data.decode("utf-8-sig"))))
    assert [r["campaign"] for r in admin_rows] == ["别人的"]


# --- isolation ------------------------------------------------------------------------------------------


def test_advisors_cannot_see_or_change_each_others_links(app, users, link):
    link_id, code = link
    other = signed_in(app, users["advisor2"])
    for path in [f"/referrals/links/{link_id}", f"/referrals/links/{link_id}/edit", f"/referrals/links/{link_id}/card"]:
        assert other.get(path).status_code == 404, path
    token = csrf_from(other.get("/referrals/links/new").get_data(as_text=True))
    assert other.post(f"/referrals/links/{link_id}/enabled",
                      data={"csrf_token": token, "enabled": "0", "confirm": "y"}).status_code == 404
    assert other.post(f"/referrals/links/{link_id}/edit",
                      data={"csrf_token": token, "host": "kaihu.example.com", "path": "/x"}).status_code == 404
    assert code not in other.get("/referrals/links").get_data(as_text=True)
    with app.app_context():
        link = db.session.get(ReferralLink, link_id)
        assert link.enabled and link.replaced_by_id is None
        owner = db.session.get(User, users["advisor2"].id)
        group = db.session.get(CommunityGroup, make_group(app, users["advisor"].id, name="甲的群"))
        with pytest.raises(PermissionDenied):
            services.create_link(owner=owner, actor=owner, destination=DEST, group=group)
    # A group id of someone else is not a choice on the form.
    resp = post_form(other, "/referrals/links/new", {"group_id": str(group.id), "host": "kaihu.example.com",
                                                     "path": "/"})
    assert resp.status_code == 400


def test_admin_and_compliance_read_every_link_mcn_nothing(app, users, link):
    link_id, code = link
    admin = signed_in(app, users["admin"])
    assert code in admin.get("/referrals/admin/links").get_data(as_text=True)
    assert admin.get(f"/referrals/links/{link_id}").status_code == 200
    assert admin.get(f"/referrals/links/{link_id}/card").status_code == 200
    compliance = signed_in(app, users["compliance"])
    assert code in compliance.get("/referrals/admin/links").get_data(as_text=True)
    page = compliance.get(f"/referrals/links/{link_id}").get_data(as_text=True)
    assert 'data-testid="disable-form"' not in page  # read-only
    assert compliance.get(f"/referrals/links/{link_id}/edit").status_code == 403
    mcn = signed_in(app, users["mcn"])
    assert mcn.get(f"/referrals/links/{link_id}").status_code == 403
    assert mcn.get("/referrals/links/export.csv").status_code == 403


def test_printable_card_shows_the_advisors_name_and_sac_number(app, users, group_id):
    link_id, code = make_link(app, users["advisor"].id, group_id=group_id, campaign="双十一")
    page = signed_in(app, users["advisor"]).get(f"/referrals/links/{link_id}/card").get_data(as_text=True)
    with app.app_context():
        profile = db.session.get(User, users["advisor"].id).advisor_profile
    assert profile.real_name in page and profile.sac_number in page
    assert "价值投资交流群" in page and "双十一" in page and f"/r/{code}/qr.svg" in page


@pytest.mark.parametrize("enabled, expires_in, replaced", [
    (True, None, False), (False, None, False), (True, 60, False), (True, -60, False), (True, 0, False),
    (True, None, True),
])
def test_live_link_rule_in_sql_and_python_agree(app, users, enabled, expires_in, replaced):
    from datetime import timedelta

    import sqlalchemy as sa

    from advisor_studio.accounts.models import User
    from advisor_studio.dbtypes import utcnow
    from advisor_studio.extensions import db
    from advisor_studio.referrals import services
    from advisor_studio.referrals.models import ReferralLink

    now = utcnow()
    with app.app_context():
        owner = db.session.get(User, users["advisor"].id)
        link = services.create_link(owner=owner, actor=owner, destination="https://kaihu.example.com/open")
        other = services.create_link(owner=owner, actor=owner, destination="https://kaihu.example.com/open")
        link.enabled = enabled
        link.expires_at = None if expires_in is None else now + timedelta(seconds=expires_in)
        link.replaced_by_id = other.id if replaced else None
        db.session.flush()
        in_sql = db.session.scalar(sa.select(sa.func.count()).select_from(ReferralLink)
                                   .where(ReferralLink.id == link.id, services.link_live_clause(now))) == 1
        assert in_sql == services.link_is_live(link.enabled, link.expires_at, link.replaced_by_id, now)


def test_a_replaced_link_cannot_be_enabled_again(app, users):
    from advisor_studio.accounts.models import User
    from advisor_studio.errors import Conflict
    from advisor_studio.extensions import db
    from advisor_studio.referrals import services

    with app.app_context():
        owner = db.session.get(User, users["advisor"].id)
        old = services.create_link(owner=owner, actor=owner, destination="https://kaihu.example.com/open")
        services.replace_link(old, owner, campaign="春季")
        db.session.commit()
        with pytest.raises(Conflict):
            services.set_link_enabled(old, True, actor=owner)
        db.session.rollback()
        assert db.session.get(services.ReferralLink, old.id).enabled is False


def test_two_people_disabling_one_link_at_once_write_one_audit_entry(app, users):
    import threading

    import sqlalchemy as sa

    from advisor_studio.accounts.models import User
    from advisor_studio.audit import AuditEntry
    from advisor_studio.extensions import db
    from advisor_studio.referrals import services

    with app.app_context():
        owner = db.session.get(User, users["advisor"].id)
        link_id = services.create_link(owner=owner, actor=owner, destination="https://kaihu.example.com/open").id
        db.session.commit()
    loaded = threading.Barrier(2)
    errors = []

    def disable():
        try:
            with app.app_context():
                link = db.session.get(services.ReferralLink, link_id)
                actor = db.session.get(User, users["advisor"].id)
                assert link.enabled
                loaded.wait(timeout=10)  # both read "enabled" before either writes
                services.set_link_enabled(link, False, actor=actor)
                db.session.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=disable) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with app.app_context():
        assert db.session.get(services.ReferralLink, link_id).enabled is False
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "link.disabled", AuditEntry.object_id == str(link_id))) == 1
