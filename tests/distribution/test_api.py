"""The partner API over HTTP, per contract.md "MCN partner API": keys, scoping, pagination, reports,
the error shape, the rate limit and the headers. Real database, real services, the Flask test client."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.distribution import services
from advisor_studio.distribution.models import Assignment, Channel, Partner, PartnerApiKey
from advisor_studio.extensions import db
from advisor_studio.studio.models import Package
from tests.factories import partner_api_key
from tests.studio.test_pages import count_queries

ASSETS = "/api/v1/partner/assets"
ASSET_FIELDS = {"id", "title", "caption", "hashtags", "platform", "channel", "advisor", "disclaimer", "duration_s",
                "width", "height", "size_bytes", "sha256", "video_url", "cover_url", "referral_url", "approved_at",
                "approval_expires_at", "status"}


def _key_row(raw: str) -> PartnerApiKey:
    return db.session.scalar(sa.select(PartnerApiKey).where(PartnerApiKey.key_hash == services.hash_api_key(raw)))


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key(app, approved) -> str:
    """An API key of 星河MCN, the partner the ``approved`` asset is assigned to."""
    return partner_api_key(app, "星河MCN")


@pytest.fixture
def other_key(app) -> str:
    return partner_api_key(app, "别家MCN")


def _more_assets(app, assignment_id: int, count: int) -> list[int]:
    """``count`` more assets of the same approval on new channels of the same partner (newest last)."""
    with app.app_context():
        first = db.session.get(Assignment, assignment_id)
        ids = []
        for _ in range(count):
            handle = f"more-{datetime.now(UTC).timestamp()}-{len(ids)}"
            channel = Channel(partner_id=first.partner_id, platform="douyin", handle=handle)
            db.session.add(channel)
            db.session.flush()
            row = Assignment(approval_id=first.approval_id, package_id=first.package_id, channel_id=channel.id,
                             partner_id=first.partner_id, status="ready")
            db.session.add(row)
            db.session.flush()
            ids.append(row.id)
        db.session.commit()
        return ids


def _publish(client, key, asset_id, **overrides):
    body = {"platform": "douyin", "post_url": "https://www.douyin.com/video/7301",
            "published_at": datetime.now(UTC).isoformat(timespec="seconds")}
    body.update(overrides)
    return client.post(f"{ASSETS}/{asset_id}/publications", json=body, headers=_auth(key))


def _assert_error(resp, status: int, *fields: str):
    assert resp.status_code == status, resp.get_data(as_text=True)
    error = resp.get_json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] and error["message"]
    for field in fields:
        assert field in error["fields"], error
    return error


# --- authentication -----------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer", "Bearer as_live_not-a-real-key", "Basic abc", "as_live_x"])
def test_missing_or_wrong_key_is_401_in_the_error_shape(client, key, header):
    resp = client.get(ASSETS, headers={"Authorization": header} if header else {})
    _assert_error(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.headers["Cache-Control"] == "no-store"


def test_revoked_key_is_refused_and_the_refusal_audited(app, client, key):
    assert client.get(ASSETS, headers=_auth(key)).status_code == 200
    with app.app_context():
        row = _key_row(key)
        services.revoke_api_key(row, actor="test", reason="leaked")
        db.session.commit()
    _assert_error(client.get(ASSETS, headers=_auth(key)), 401)
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "partner_api.auth_refused")
                                   .order_by(AuditEntry.id.desc())).first()
        assert entry.details["reason"] == "revoked" and entry.details["key_prefix"] == key[:12]


def test_inactive_partner_key_is_401(app, client, key):
    with app.app_context():
        db.session.scalar(sa.select(Partner).where(Partner.name == "星河MCN")).active = False
        db.session.commit()
    _assert_error(client.get(ASSETS, headers=_auth(key)), 401)


def test_last_used_is_written_at_most_once_a_minute(app, client, key):
    with count_queries(app) as statements:
        for _ in range(3):
            assert client.get(ASSETS, headers=_auth(key)).status_code == 200
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE PARTNER_API_KEYS")]
    assert len(updates) == 1
    with app.app_context():
        row = _key_row(key)
        assert row.last_used_at is not None
        row.last_used_at = datetime.now(UTC) - timedelta(minutes=2)
        db.session.commit()
    with count_queries(app) as statements:
        client.get(ASSETS, headers=_auth(key))
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE PARTNER_API_KEYS")]) == 1


# --- another partner ------------------------------------------------------------------------------------

def test_another_partners_asset_is_404_everywhere_and_never_listed(app, client, approved, key, other_key):
    _package_id, asset_id = approved
    resp = client.get(ASSETS, headers=_auth(other_key))
    assert resp.status_code == 200 and resp.get_json() == {"items": [], "next_cursor": None}
    _assert_error(client.get(f"{ASSETS}/{asset_id}", headers=_auth(other_key)), 404)
    _assert_error(_publish(client, other_key, asset_id), 404)
    resp = client.post(f"{ASSETS}/{asset_id}/takedowns", headers=_auth(other_key),
                       json={"post_url": "https://www.douyin.com/video/1", "removed_at": "2026-11-30T09:00:00Z"})
    _assert_error(resp, 404)
    _assert_error(client.get(f"{ASSETS}/999999", headers=_auth(other_key)), 404)
    with app.app_context():
        assert db.session.get(Assignment, asset_id).status == "ready"
        assert db.session.get(Assignment, asset_id).publications == []
        probes = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "partner_api.foreign_asset")).all()
        assert probes and all(p.object_id == str(asset_id) for p in probes)


# --- the ASSET ----------------------------------------------------------------------------------------

def test_asset_has_every_contract_field_from_the_approval(app, client, approved, key, users):
    package_id, asset_id = approved
    resp = client.get(f"{ASSETS}/{asset_id}", headers=_auth(key))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    asset = resp.get_json()
    assert ASSET_FIELDS <= set(asset)
    with app.app_context():
        assignment = db.session.get(Assignment, asset_id)
        manifest = assignment.approval.manifest
        profile = db.session.get(User, users["advisor"].id).advisor_profile
        assert asset["id"] == asset_id and asset["status"] == "ready"
        assert (asset["title"], asset["caption"], asset["hashtags"]) == (
            manifest["title"], manifest["caption"], manifest["hashtags"])
        assert asset["channel"] == {"id": assignment.channel.id, "platform": "douyin",
                                    "handle": assignment.channel.handle}
        assert asset["platform"] == "douyin"
        assert asset["advisor"] == {"name": profile.real_name, "sac_number": profile.sac_number}
        assert asset["sha256"] == manifest["rendition_sha256"]
        assert asset["disclaimer"]
        assert asset["approved_at"].endswith("Z") and asset["approval_expires_at"].endswith("Z")
        # The package link the approval pinned for this channel: what the partner posts was approved.
        (pinned,) = [item for item in manifest["referral_links"] if item["channel_id"] == assignment.channel_id]
        assert asset["referral_url"] == app.config["PUBLIC_BASE_URL"].rstrip("/") + "/r/" + pinned["code"]
    assert urlsplit(asset["video_url"]).path.startswith("/files/")
    follow = client.get(urlsplit(asset["video_url"]).path)
    if follow.status_code == 200:  # local storage streams; S3 would redirect to a short presigned URL
        assert hashlib.sha256(follow.get_data()).hexdigest() == asset["sha256"]
    else:
        assert follow.status_code == 302


def test_withdrawn_asset_stays_listed_with_null_urls_and_filters_by_status(app, client, approved, key, users):
    package_id, asset_id = approved
    with app.app_context():
        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id),
                            "误导性表述")
        db.session.commit()
    items = client.get(ASSETS, headers=_auth(key)).get_json()["items"]
    assert [(a["id"], a["status"], a["video_url"], a["cover_url"]) for a in items] == [
        (asset_id, "withdrawn", None, None)]
    assert items[0]["takedown_due_at"] is None or items[0]["takedown_due_at"].endswith("Z")
    assert [a["id"] for a in client.get(f"{ASSETS}?status=withdrawn", headers=_auth(key)).get_json()["items"]] == [
        asset_id]
    assert client.get(f"{ASSETS}?status=ready", headers=_auth(key)).get_json()["items"] == []


@pytest.mark.parametrize("query, field", [
    ("status=deleted", "status"), ("status=READY", "status"), ("limit=0", "limit"), ("limit=101", "limit"),
    ("limit=abc", "limit"), ("limit=-1", "limit"), ("cursor=nonsense", "cursor"), ("cursor=" + "A" * 60, "cursor"),
])
def test_bad_query_values_are_400_with_fields(client, key, query, field):
    resp = client.get(f"{ASSETS}?{query}", headers=_auth(key))
    _assert_error(resp, 400, field)
    assert resp.headers["Cache-Control"] == "no-store"


def test_cursor_pages_are_stable_under_inserts_newest_first(app, client, approved, key):
    _package_id, first_id = approved
    older = [first_id, *_more_assets(app, first_id, 6)]  # 7 assets, ids ascending
    seen = []
    resp = client.get(f"{ASSETS}?limit=3", headers=_auth(key)).get_json()
    seen += [a["id"] for a in resp["items"]]
    newer = _more_assets(app, first_id, 2)  # inserted between page fetches: they belong before page 1
    while resp["next_cursor"]:
        resp = client.get(f"{ASSETS}?limit=3&cursor={resp['next_cursor']}", headers=_auth(key)).get_json()
        seen += [a["id"] for a in resp["items"]]
        _more_assets(app, first_id, 1)
    assert seen == sorted(older, reverse=True)  # no duplicates, no gaps
    assert set(newer).isdisjoint(seen)
    fresh = client.get(f"{ASSETS}?limit=2", headers=_auth(key)).get_json()
    assert fresh["items"][0]["id"] > newer[-1]


def test_list_runs_in_a_constant_number_of_queries(app, client, approved, key):
    _package_id, first_id = approved
    client.get(ASSETS, headers=_auth(key))  # the key's last-used write happens on this first call

    def queries_for_page() -> int:
        with count_queries(app) as statements:
            assert client.get(f"{ASSETS}?limit=100", headers=_auth(key)).status_code == 200
        return len(statements)

    few = queries_for_page()
    _more_assets(app, first_id, 12)
    assert queries_for_page() == few


# --- publications and take-downs ------------------------------------------------------------------------

def test_publication_report_is_201_and_the_asset_becomes_published(app, client, approved, key):
    _package_id, asset_id = approved
    beijing = timezone(timedelta(hours=8))
    resp = _publish(client, key, asset_id,
                    published_at=(datetime.now(UTC) - timedelta(minutes=1)).astimezone(beijing).isoformat())
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["asset_status"] == "published" and body["asset_id"] == asset_id and body["platform"] == "douyin"
    assert body["post_url"] == "https://www.douyin.com/video/7301" and body["published_at"].endswith("Z")
    assert resp.headers["Cache-Control"] == "no-store"
    asset = client.get(f"{ASSETS}/{asset_id}", headers=_auth(key)).get_json()
    assert asset["status"] == "published" and [p["id"] for p in asset["publications"]] == [body["id"]]
    with app.app_context():
        publication = db.session.get(Assignment, asset_id).publications[0]
        assert publication.reported_by_key_id == _key_row(key).id
    _assert_error(_publish(client, key, asset_id, post_url="https://WWW.DOUYIN.COM/video/7301#x"), 409, "post_url")


@pytest.mark.parametrize("overrides, field", [
    ({"post_url": "not a url"}, "post_url"),
    ({"post_url": "https://evil.example.com/video/1"}, "post_url"),
    ({"post_url": 123}, "post_url"),
    ({"post_url": "https://www.douyin.com/" + "a" * 2000}, "post_url"),
    ({"post_url": "https://www.douyin.com/video/\x00"}, "post_url"),
    ({"post_url": ""}, "post_url"),
    ({"published_at": (datetime.now(UTC) + timedelta(days=3 * 365)).isoformat()}, "published_at"),
    ({"published_at": "2026-11-30T09:00:00"}, "published_at"),
    ({"published_at": "yesterday"}, "published_at"),
    ({"published_at": "9999-12-31T23:59:59-23:59"}, "published_at"),
    ({"published_at": 1700000000}, "published_at"),
    ({"platform": "bilibili"}, "platform"),
    ({"platform": "myspace"}, "platform"),
    ({"platform": None}, "platform"),
])
def test_bad_publication_is_400_with_fields_and_changes_nothing(app, client, approved, key, overrides, field):
    _package_id, asset_id = approved
    _assert_error(_publish(client, key, asset_id, **overrides), 400, field)
    with app.app_context():
        assert db.session.get(Assignment, asset_id).status == "ready"
        assert db.session.get(Assignment, asset_id).publications == []


@pytest.mark.parametrize("kwargs", [
    {"data": "[1, 2]", "content_type": "application/json"},
    {"data": "\"text\"", "content_type": "application/json"},
    {"data": "{not json", "content_type": "application/json"},
    {"data": "{\"a\": NaN}", "content_type": "application/json"},
    {"data": "platform=douyin", "content_type": "application/x-www-form-urlencoded"},
    {"data": b"\xff\xfe", "content_type": "application/json"},
])
def test_a_body_that_is_not_a_json_object_is_400(client, approved, key, kwargs):
    _package_id, asset_id = approved
    _assert_error(client.post(f"{ASSETS}/{asset_id}/publications", headers=_auth(key), **kwargs), 400, "body")


def test_a_huge_body_is_refused_before_it_is_read(client, approved, key):
    _package_id, asset_id = approved
    resp = client.post(f"{ASSETS}/{asset_id}/publications", headers=_auth(key), content_type="application/json",
                       data=b'{"post_url": "' + b"a" * 200_000 + b'"}')
    _assert_error(resp, 413)


def test_takedown_for_a_live_asset_is_409_and_for_a_withdrawn_one_201(app, client, approved, key, users):
    package_id, asset_id = approved
    assert _publish(client, key, asset_id).status_code == 201
    body = {"post_url": "https://www.douyin.com/video/7301", "removed_at": datetime.now(UTC).isoformat()}
    error = _assert_error(client.post(f"{ASSETS}/{asset_id}/takedowns", json=body, headers=_auth(key)), 409)
    assert error["code"] == "asset_live"
    with app.app_context():
        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id),
                            "撤回")
        db.session.commit()
    unknown = {**body, "post_url": "https://www.douyin.com/video/1"}
    _assert_error(client.post(f"{ASSETS}/{asset_id}/takedowns", json=unknown, headers=_auth(key)), 422, "post_url")
    resp = client.post(f"{ASSETS}/{asset_id}/takedowns", json=body, headers=_auth(key))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    created = resp.get_json()
    assert created["asset_status"] == "withdrawn" and created["takedown_complete"] is True
    assert created["late"] is False and created["removed_at"].endswith("Z")
    _assert_error(client.post(f"{ASSETS}/{asset_id}/takedowns", json=body, headers=_auth(key)), 409, "post_url")
    _assert_error(_publish(client, key, asset_id, post_url="https://www.douyin.com/video/2"), 409)
    asset = client.get(f"{ASSETS}/{asset_id}", headers=_auth(key)).get_json()
    assert asset["publications"][0]["takedown"]["id"] == created["id"]


# --- rate limit and headers -----------------------------------------------------------------------------

def test_rate_limit_is_per_key_and_answers_429_in_the_error_shape(app, client, key, other_key):
    app.config["PARTNER_API_RATE_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert client.get(ASSETS, headers=_auth(key)).status_code == 200
    resp = client.get(ASSETS, headers=_auth(key))
    assert _assert_error(resp, 429)["code"] == "rate_limited"
    assert resp.headers["Cache-Control"] == "no-store"
    assert client.get(ASSETS, headers=_auth(other_key)).status_code == 200  # another key has its own budget
    with app.app_context():
        assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "access.rate_limited"))


def test_every_api_answer_is_no_store_even_routing_errors(client, key):
    for resp in (client.get("/api/v1/nothing-here", headers=_auth(key)),
                 client.delete(ASSETS, headers=_auth(key)),
                 client.get("/api/v1/openapi.json")):
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.is_json
    for resp in (client.get("/api/v1/nothing-here", headers=_auth(key)), client.delete(ASSETS, headers=_auth(key)),
                 client.get(f"{ASSETS}/{2**40}", headers=_auth(key))):
        _assert_error(resp, resp.status_code)
        assert resp.status_code in (404, 405)


def test_api_needs_no_csrf_token(client, approved, key):
    _package_id, asset_id = approved
    assert _publish(client, key, asset_id).status_code == 201


# --- the document and the docs page ---------------------------------------------------------------------

def test_openapi_document_covers_every_api_route_and_the_conversion_webhook(app, client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.")
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/")}
    assert routes <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"}
    conversions = doc["paths"]["/api/v1/conversions"]["post"]
    assert "X-Signature" in conversions["description"] and conversions["security"] == []
    assert {p["name"] for p in conversions["parameters"] if p["in"] == "header"} == {"X-Signature", "Idempotency-Key"}
    assert set(conversions["responses"]) == {"201", "200", "400", "401", "409", "413"}
    assert "/api/v1/conversions" in routes
    asset = doc["components"]["schemas"]["Asset"]
    assert ASSET_FIELDS <= set(asset["properties"]) and ASSET_FIELDS <= set(asset["required"])
    publications = doc["paths"]["/api/v1/partner/assets/{asset_id}/publications"]["post"]
    assert {"201", "400", "401", "404", "409", "429"} <= set(publications["responses"])
    error = doc["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message", "fields"}


def test_docs_page_renders_the_document_from_files_of_this_app(client):
    resp = client.get("/api/docs")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/openapi.json"' in page
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources and all(src.startswith("/") for src in sources)  # no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/api/docs/swagger/{asset}").status_code == 200
    assert client.get("/api/docs/swagger/index.html").status_code == 404
