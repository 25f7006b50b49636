"""Admin pages for partners, channels, API keys and mcn members: CRUD, validation, SSRF, audit, access."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.distribution import services
from advisor_studio.distribution.models import Channel, Partner, PartnerApiKey
from advisor_studio.extensions import db
from tests.conftest import csrf_from, post_form, signed_in
from tests.factories import make_user

KEY_RE = re.compile(r'data-testid="raw-key" aria-label="[^"]*"|value="(as_live_[A-Za-z0-9_\-]+)"')
PUBLIC_HTTPS = "https://93.184.216.34/hooks/advisor-studio"  # an IP literal: no DNS needed in the test


def raw_key_in(html: str) -> str:
    match = re.search(r'value="(as_live_[A-Za-z0-9_\-]+)"', html)
    assert match, "no key on the page"
    return match.group(1)


def audit_actions(app, object_type: str | None = None) -> list[str]:
    with app.app_context():
        stmt = sa.select(AuditEntry.action).order_by(AuditEntry.seq)
        if object_type:
            stmt = stmt.where(AuditEntry.object_type == object_type)
        return list(db.session.scalars(stmt))


def make_partner(app, name: str = "蓝海MCN", channels=("douyin:@lanhai",), **kwargs) -> tuple[int, str]:
    with app.app_context():
        partner, key = services.create_partner(name, channels, actor="test", **kwargs)
        db.session.commit()
        return partner.id, key


def admin_in_english(app, record):
    """A signed-in admin reading the English UI: messages are asserted by their msgid."""
    client = signed_in(app, record)
    assert post_form(client, "/language/en", {"next": "/"}, form_page="/").status_code == 302
    return client


@pytest.fixture
def admin(app, users):
    return admin_in_english(app, users["admin"])


def test_admin_creates_partner_and_sees_its_first_key_once(app, admin):
    resp = post_form(admin, "/admin/partners/new", {"name": "蓝海MCN", "contact_name": "李经理",
                                                    "contact_email": "li@lanhai.example.com",
                                                    "contact_phone": "+86 10 1234 5678", "webhook_url": ""})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:2000]
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    key = raw_key_in(html)
    with app.app_context():
        partner = db.session.scalar(sa.select(Partner).where(Partner.name == "蓝海MCN"))
        stored = db.session.scalars(sa.select(PartnerApiKey)).one()
        assert (partner.contact_name, partner.contact_email, partner.contact_phone) == (
            "李经理", "li@lanhai.example.com", "+86 10 1234 5678")
        assert stored.key_hash == services.hash_api_key(key) and key not in (stored.key_hash, stored.prefix)
        assert key.startswith(stored.prefix) and f"{stored.prefix}…" in html
        assert services.partner_for_api_key(key).id == partner.id
        partner_id = partner.id
    page = admin.get(f"/admin/partners/{partner_id}").get_data(as_text=True)
    assert key not in page and stored.prefix in page  # never shown again; the prefix names it
    assert audit_actions(app, "partner")[:2] == ["partner.created", "partner.api_key_issued"]


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"name": ""}, 400, "This field is required."),
    ({"name": "X", "contact_email": "not-an-address"}, 400, "The contact e-mail is not a valid address."),
    ({"name": "X", "contact_phone": "call me"}, 400, "The contact phone may hold only digits"),
    ({"name": "X", "webhook_url": "ftp://93.184.216.34/x"}, 400, "must be an http(s) URL"),
    ({"name": "星河MCN"}, 409, "A partner named 星河MCN already exists."),
])
def test_partner_form_refuses_bad_input_with_a_clear_message(app, admin, data, status, message):
    make_partner(app, "星河MCN")
    resp = post_form(admin, "/admin/partners/new", data)
    assert resp.status_code == status
    assert message in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Partner.id))) == 1


def test_partner_list_searches_filters_paginates_and_says_what_to_do_when_empty(app, admin):
    empty = admin.get("/admin/partners").get_data(as_text=True)
    assert 'data-testid="empty-state"' in empty and "New partner" in empty
    make_partner(app, "蓝海MCN")
    other_id, _key = make_partner(app, "星河MCN", ["douyin:@xinghe"])
    with app.app_context():
        services.set_partner_active(db.session.get(Partner, other_id), False, actor="test", reason="合同到期")
        db.session.commit()
    html = admin.get("/admin/partners?q=蓝海").get_data(as_text=True)
    assert "蓝海MCN" in html and "星河MCN" not in html
    html = admin.get("/admin/partners?active=no").get_data(as_text=True)
    assert "星河MCN" in html and "蓝海MCN" not in html
    html = admin.get("/admin/partners?q=nobody").get_data(as_text=True)
    assert "No partners match these filters." in html
    assert admin.get("/admin/partners?page=abc").status_code == 400
    app.config["PAGE_SIZE"] = 1
    html = admin.get("/admin/partners").get_data(as_text=True)
    assert html.count('data-testid="partner-row"') == 1 and "page=2" in html


def test_admin_edits_partner_contact_and_webhook_url_and_it_is_audited(app, admin):
    partner_id, _key = make_partner(app)
    resp = post_form(admin, f"/admin/partners/{partner_id}", {
        "name": "蓝海传媒", "contact_name": "王", "contact_email": "w@lanhai.example.com", "contact_phone": "",
        "webhook_url": "http://127.0.0.1:9/hook"})  # development configuration allows loopback receivers
    assert resp.status_code == 302
    with app.app_context():
        partner = db.session.get(Partner, partner_id)
        assert (partner.name, partner.webhook_url, partner.contact_phone) == (
            "蓝海传媒", "http://127.0.0.1:9/hook", None)
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "partner.updated")).one()
        assert entry.details["name"] == ["蓝海MCN", "蓝海传媒"] and "webhook_secret" not in entry.details


UNSAFE_URLS = [
    ("http://93.184.216.34/hook", "must use https"),
    ("https://127.0.0.1/hook", "private or internal address"),
    ("https://10.1.2.3/hook", "private or internal address"),
    ("https://192.168.1.10/hook", "private or internal address"),
    ("https://169.254.169.254/latest/meta-data", "private or internal address"),
    ("https://[::1]/hook", "private or internal address"),
    ("https://[::ffff:127.0.0.1]/hook", "private or internal address"),
    ("https://0.0.0.0/hook", "private or internal address"),
    ("https://user:pw@93.184.216.34/hook", "without user name or password"),
]


@pytest.mark.parametrize(("url", "message"), UNSAFE_URLS, ids=[u for u, _m in UNSAFE_URLS])
def test_production_config_refuses_webhook_urls_to_internal_addresses(app_factory, users, url, message):
    app = app_factory(WEBHOOK_ALLOW_PRIVATE=False)
    partner_id, _key = make_partner(app, webhook_url=PUBLIC_HTTPS)
    admin = admin_in_english(app, users["admin"])
    resp = post_form(admin, f"/admin/partners/{partner_id}", {"name": "蓝海MCN", "webhook_url": url})
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    resp = post_form(admin, "/admin/partners/new", {"name": "新机构", "webhook_url": url})
    assert resp.status_code == 400
    with app.app_context():
        assert db.session.get(Partner, partner_id).webhook_url == PUBLIC_HTTPS  # nothing changed
        assert db.session.scalar(sa.select(Partner).where(Partner.name == "新机构")) is None
        refused = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "partner.webhook_url_refused").order_by(AuditEntry.seq)).all()
        assert [(e.object_id, e.details["url"]) for e in refused] == [(str(partner_id), url), ("-", url)]
        assert refused[0].actor_id == users["admin"].id


def test_production_config_accepts_https_to_a_public_address(app_factory, users):
    app = app_factory(WEBHOOK_ALLOW_PRIVATE=False)
    partner_id, _key = make_partner(app)
    admin = admin_in_english(app, users["admin"])
    resp = post_form(admin, f"/admin/partners/{partner_id}", {"name": "蓝海MCN", "webhook_url": PUBLIC_HTTPS})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Partner, partner_id).webhook_url == PUBLIC_HTTPS


def test_cli_create_refuses_an_unsafe_webhook_url_in_production_config(app_factory):
    app = app_factory(WEBHOOK_ALLOW_PRIVATE=False)
    with app.app_context():
        with pytest.raises(services.ValidationError):
            services.create_partner("蓝海MCN", [], actor="cli", webhook_url="https://10.0.0.1/x")


def test_webhook_secret_is_masked_and_regenerated_only_with_confirmation(app, admin):
    partner_id, _key = make_partner(app)
    with app.app_context():
        old = db.session.get(Partner, partner_id).webhook_secret
    page = admin.get(f"/admin/partners/{partner_id}").get_data(as_text=True)
    assert old not in page and f"{old[:4]}••••" in page
    refused = post_form(admin, f"/admin/partners/{partner_id}/webhook-secret", {},
                        form_page=f"/admin/partners/{partner_id}")
    assert refused.status_code == 400 and "Tick the box" in refused.get_data(as_text=True)
    resp = post_form(admin, f"/admin/partners/{partner_id}/webhook-secret", {"confirm": "y"},
                     form_page=f"/admin/partners/{partner_id}")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    with app.app_context():
        new = db.session.get(Partner, partner_id).webhook_secret
        assert new != old and new in resp.get_data(as_text=True)
        entry = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "partner.webhook_secret_regenerated")).one()
        assert new not in str(entry.details)
    assert new not in admin.get(f"/admin/partners/{partner_id}").get_data(as_text=True)


def test_deactivating_partner_needs_reason_and_confirmation_and_stops_its_keys(app, admin):
    partner_id, key = make_partner(app)
    page = f"/admin/partners/{partner_id}"
    for data in ({"reason": "", "confirm": "y"}, {"reason": "合同终止"}):
        resp = post_form(admin, f"{page}/deactivate", data, form_page=page)
        assert resp.status_code == 400 and "Give a reason and tick the box" in resp.get_data(as_text=True)
    with app.app_context():
        assert services.partner_for_api_key(key) is not None
    resp = post_form(admin, f"{page}/deactivate", {"reason": "合同终止", "confirm": "y"}, form_page=page)
    assert resp.status_code == 302
    with app.app_context():
        assert not db.session.get(Partner, partner_id).active
        assert services.partner_for_api_key(key) is None
    assert 'data-testid="partner-inactive"' in admin.get(page).get_data(as_text=True)
    assert post_form(admin, f"{page}/reactivate", {}, form_page=page).status_code == 302
    with app.app_context():
        assert services.partner_for_api_key(key).id == partner_id
    assert audit_actions(app, "partner")[-2:] == ["partner.deactivated", "partner.reactivated"]


def test_deactivated_partners_download_links_stop(app, admin, approved):
    from advisor_studio.distribution.models import Assignment
    from advisor_studio.integrity.downloads import Audience, rendition_link

    _package_id, assignment_id = approved
    with app.app_context():
        assignment = db.session.get(Assignment, assignment_id)
        partner_id = assignment.partner_id
        with app.test_request_context():
            url = rendition_link(assignment.package.rendition, Audience(partner_id=partner_id))
    served = admin.get(url)
    # Local storage streams the bytes; S3 answers with a redirect to a short presigned GET.
    served.close()  # ends the streamed response's context before the next request
    assert served.status_code == 200 or (served.status_code == 302 and served.location.startswith("http"))
    page = f"/admin/partners/{partner_id}"
    post_form(admin, f"{page}/deactivate", {"reason": "合同终止", "confirm": "y"}, form_page=page)
    assert admin.get(url).status_code == 410


def test_key_issued_with_label_is_shown_once_listed_by_prefix_and_revoked_with_a_reason(app, admin, users):
    partner_id, first_key = make_partner(app)
    page = f"/admin/partners/{partner_id}"
    resp = post_form(admin, f"{page}/keys", {"label": "发布系统"}, form_page=page)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    key = raw_key_in(resp.get_data(as_text=True))
    with app.app_context():
        stored = db.session.scalar(sa.select(PartnerApiKey).where(
            PartnerApiKey.key_hash == services.hash_api_key(key)))
        assert stored.label == "发布系统" and stored.created_by_id == users["admin"].id
        key_id = stored.id
    listing = admin.get(page).get_data(as_text=True)
    assert key not in listing and f"{stored.prefix}…" in listing and "发布系统" in listing
    assert listing.count('data-testid="key-row"') == 2
    revoke = f"{page}/keys/{key_id}/revoke"
    resp = post_form(admin, revoke, {"reason": "", "confirm": "y"}, form_page=page)
    assert resp.status_code == 400 and "Give a reason and tick the box" in resp.get_data(as_text=True)
    with app.app_context():
        assert services.partner_for_api_key(key) is not None  # refused revocation changed nothing
    assert post_form(admin, revoke, {"reason": "在群里泄露", "confirm": "y"}, form_page=page).status_code == 302
    with app.app_context():
        stored = db.session.get(PartnerApiKey, key_id)
        assert stored.revoked_by_id == users["admin"].id and stored.revoke_reason == "在群里泄露"
        assert services.partner_for_api_key(key) is None
        assert services.partner_for_api_key(first_key).id == partner_id  # the other key still works
        revoked = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "partner.api_key_revoked")).one()
        assert revoked.details["reason"] == "在群里泄露" and revoked.actor_id == users["admin"].id
    listing = admin.get(page).get_data(as_text=True)
    assert "在群里泄露" in listing and "Revoked" in listing
    again = post_form(admin, revoke, {"reason": "again", "confirm": "y"}, form_page=page)
    assert again.status_code == 302
    assert "This key is already revoked." in admin.get(page).get_data(as_text=True)


def test_a_key_cannot_be_revoked_through_another_partners_page(app, admin):
    partner_id, _key = make_partner(app)
    other_id, other_key = make_partner(app, "星河MCN", [])
    with app.app_context():
        other_key_id = db.session.scalar(sa.select(PartnerApiKey.id).where(PartnerApiKey.partner_id == other_id))
    resp = post_form(admin, f"/admin/partners/{partner_id}/keys/{other_key_id}/revoke",
                     {"reason": "x", "confirm": "y"}, form_page=f"/admin/partners/{partner_id}")
    assert resp.status_code == 404
    with app.app_context():
        assert services.partner_for_api_key(other_key).id == other_id


def test_channels_are_added_listed_filtered_and_edited(app, admin):
    partner_id, _key = make_partner(app, channels=())
    other_id, _other = make_partner(app, "星河MCN", ["kuaishou:@xinghe"])
    empty = admin.get(f"/admin/channels?partner={partner_id}").get_data(as_text=True)
    assert "No channels match these filters." in empty
    resp = post_form(admin, "/admin/channels/new", {"partner_id": partner_id, "platform": "other",
                                                    "handle": "视频号外站", "follower_count": "12000"})
    assert resp.status_code == 302
    post_form(admin, "/admin/channels/new", {"partner_id": partner_id, "platform": "douyin", "handle": "@lanhai"})
    html = admin.get(f"/admin/channels?partner={partner_id}").get_data(as_text=True)
    assert html.count('data-testid="channel-row"') == 2 and "@xinghe" not in html
    assert "Other platform" in html and "12,000" in html and ">other<" not in html
    html = admin.get("/admin/channels?platform=kuaishou").get_data(as_text=True)
    assert "@xinghe" in html and "@lanhai" not in html
    with app.app_context():
        channel_id = db.session.scalar(sa.select(Channel.id).where(Channel.handle == "@lanhai"))
    resp = post_form(admin, f"/admin/channels/{channel_id}", {"follower_count": "500"})  # active unticked
    assert resp.status_code == 302
    with app.app_context():
        channel = db.session.get(Channel, channel_id)
        assert (channel.follower_count, channel.active) == (500, False)
    html = admin.get("/admin/channels?active=no").get_data(as_text=True)
    assert "@lanhai" in html and "视频号外站" not in html
    assert audit_actions(app, "channel")[-3:] == ["channel.created", "channel.created", "channel.updated"]
    assert other_id


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"platform": "douyin", "handle": "@taken"}, 409, "already exists"),
    ({"platform": "douyin", "handle": "@new", "follower_count": "-1"}, 400, "Number must be between 0 and"),
    ({"platform": "douyin", "handle": "@new", "follower_count": "many"}, 400, "Not a valid integer value."),
    ({"platform": "tiktok", "handle": "@new"}, 400, "Not a valid choice."),
    ({"platform": "douyin", "handle": ""}, 400, "This field is required."),
])
def test_channel_form_refuses_bad_input_with_a_clear_message(app, admin, data, status, message):
    partner_id, _key = make_partner(app, channels=("douyin:@taken",))
    resp = post_form(admin, "/admin/channels/new", {"partner_id": partner_id, **data})
    assert resp.status_code == status
    assert message in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Channel.id))) == 1


def test_channel_page_asks_for_a_partner_first_when_there_is_none(admin):
    html = admin.get("/admin/channels/new").get_data(as_text=True)
    assert "There is no partner yet." in html and "/admin/partners/new" in html


def test_members_are_mcn_users_linked_and_unlinked_on_the_partner_page(app, admin, users):
    partner_id, _key = make_partner(app)
    other_id, _other = make_partner(app, "星河MCN", [])
    with app.app_context():
        busy = make_user("mcn")
        busy.partner_id = other_id
        db.session.commit()
        busy_id = busy.id
    page = f"/admin/partners/{partner_id}"
    html = admin.get(page).get_data(as_text=True)
    assert users["mcn"].email in html and users["advisor"].email not in html.split('data-testid="member-link-form"')[1]
    assert post_form(admin, f"{page}/members", {"user_id": users["mcn"].id}, form_page=page).status_code == 302
    resp = post_form(admin, f"{page}/members", {"user_id": users["advisor"].id}, form_page=page)
    assert resp.status_code == 400
    assert "Only users holding the MCN partner role can belong to a partner." in resp.get_data(as_text=True)
    resp = post_form(admin, f"{page}/members", {"user_id": busy_id}, form_page=page)
    assert resp.status_code == 409 and "already belongs to 星河MCN" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, users["mcn"].id).partner_id == partner_id
        assert db.session.get(User, users["advisor"].id).partner_id is None
        assert db.session.get(User, busy_id).partner_id == other_id
    assert 'data-testid="member-row"' in admin.get(page).get_data(as_text=True)
    resp = post_form(admin, f"{page}/members/{users['mcn'].id}/unlink", {}, form_page=page)
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(User, users["mcn"].id).partner_id is None
    assert post_form(admin, f"{page}/members/{busy_id}/unlink", {}, form_page=page).status_code == 404
    actions = audit_actions(app)
    assert actions.count("user.partner_changed") == 2
    assert "partner.member_linked" in actions and "partner.member_unlinked" in actions


def test_admin_user_page_assigns_the_partner_of_an_mcn_user(app, admin, users):
    partner_id, _key = make_partner(app)
    mcn_page = f"/admin/users/{users['mcn'].id}"
    # The partner section is on every user page, tied to the mcn role box (user_form.js shows it only
    # while that role is ticked, tests/browser/test_screens.py); the server decides either way.
    for page in (mcn_page, f"/admin/users/{users['advisor'].id}"):
        assert 'data-testid="user-partner" data-role-section="mcn"' in admin.get(page).get_data(as_text=True)
    resp = post_form(admin, mcn_page, {"name": users["mcn"].name, "roles": "mcn", "partner_id": str(partner_id)})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(User, users["mcn"].id).partner_id == partner_id
    # A partner for someone without the mcn role is refused with a reason, and nothing changes.
    adv_page = f"/admin/users/{users['advisor2'].id}"
    resp = post_form(admin, adv_page, {"name": "改名", "roles": "advisor", "partner_id": str(partner_id)})
    assert resp.status_code == 400
    assert "Only users holding the MCN partner role" in resp.get_data(as_text=True)
    with app.app_context():
        advisor2 = db.session.get(User, users["advisor2"].id)
        assert advisor2.partner_id is None and advisor2.name != "改名"
    # Taking the mcn role away ends the membership with it.
    resp = post_form(admin, mcn_page, {"name": users["mcn"].name, "roles": "advisor",
                                       "sac_number": "S0000000009999", "partner_id": str(partner_id)})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    with app.app_context():
        assert db.session.get(User, users["mcn"].id).partner_id is None


ADMIN_GETS = ["/admin/partners", "/admin/partners/new", "/admin/partners/{p}", "/admin/channels",
              "/admin/channels/new", "/admin/channels/{c}"]
ADMIN_POSTS = ["/admin/partners/new", "/admin/partners/{p}", "/admin/partners/{p}/deactivate",
               "/admin/partners/{p}/reactivate", "/admin/partners/{p}/webhook-secret", "/admin/partners/{p}/keys",
               "/admin/partners/{p}/keys/{k}/revoke", "/admin/partners/{p}/members",
               "/admin/partners/{p}/members/{u}/unlink", "/admin/channels/new", "/admin/channels/{c}"]


@pytest.mark.parametrize("role", ["advisor", "compliance", "mcn"])
def test_non_admin_roles_get_403_on_every_admin_page_and_action(app, users, role):
    partner_id, key = make_partner(app)
    with app.app_context():
        ids = {"p": partner_id, "c": db.session.scalar(sa.select(Channel.id)),
               "k": db.session.scalar(sa.select(PartnerApiKey.id)), "u": users["mcn"].id}
        db.session.get(User, users["mcn"].id).partner_id = partner_id
        db.session.commit()
    client = signed_in(app, users[role])
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    for path in ADMIN_GETS:
        assert client.get(path.format(**ids)).status_code == 403, path
    data = {"name": "Hacked", "reason": "x", "confirm": "y", "label": "x", "user_id": users[role].id,
            "partner_id": partner_id, "platform": "douyin", "handle": "@hacked", "csrf_token": token}
    for path in ADMIN_POSTS:
        assert client.post(path.format(**ids), data=data).status_code == 403, path
    with app.app_context():
        partner = db.session.get(Partner, partner_id)
        assert partner.name == "蓝海MCN" and partner.active and services.partner_for_api_key(key) is not None
        assert db.session.get(User, users["mcn"].id).partner_id == partner_id
        assert db.session.scalar(sa.select(sa.func.count(Channel.id))) == 1
        assert "access.denied" in audit_actions(app)
    anonymous = app.test_client()
    for path in ADMIN_GETS:
        resp = anonymous.get(path.format(**ids))
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], path


def test_every_admin_form_carries_csrf_and_a_post_without_it_changes_nothing(app, admin):
    partner_id, key = make_partner(app)
    with app.app_context():
        channel_id = db.session.scalar(sa.select(Channel.id))
        key_id = db.session.scalar(sa.select(PartnerApiKey.id))
    html = admin.get(f"/admin/partners/{partner_id}").get_data(as_text=True)
    forms = re.findall(r"<form method=\"post\".*?</form>", html, re.S)
    assert len(forms) >= 5 and all('name="csrf_token"' in form for form in forms)
    for page in ("/admin/partners/new", "/admin/channels/new", f"/admin/channels/{channel_id}"):
        assert 'name="csrf_token"' in admin.get(page).get_data(as_text=True), page
    for path in (f"/admin/partners/{partner_id}/deactivate", f"/admin/partners/{partner_id}/keys/{key_id}/revoke",
                 f"/admin/partners/{partner_id}/webhook-secret"):
        resp = admin.post(path, data={"reason": "x", "confirm": "y"})
        assert resp.status_code == 400, path
    with app.app_context():
        assert db.session.get(Partner, partner_id).active and services.partner_for_api_key(key) is not None


def test_revoked_key_is_refused_by_partner_for_api_key(app_ctx):
    partner, key = services.create_partner("蓝海MCN", [], actor="test", key_label="首个")
    stored = db.session.scalars(sa.select(PartnerApiKey)).one()
    assert stored.label == "首个"
    services.revoke_api_key(stored, actor="test", reason="轮换")
    assert services.partner_for_api_key(key) is None
    with pytest.raises(services.Conflict):
        services.revoke_api_key(stored, actor="test", reason="again")
