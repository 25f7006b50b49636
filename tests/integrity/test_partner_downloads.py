"""A partner's video_url / cover_url: bound to the partner, its key and the asset; checked on every
follow; logged; never cached; ranges honoured; on S3 a verified redirect to a presigned GET of 60 s."""

from __future__ import annotations

import hashlib
import os
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from werkzeug.http import parse_options_header

from advisor_studio import storage as storage_module
from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.distribution import services as distribution
from advisor_studio.distribution.models import Assignment, Partner, PartnerApiKey
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import PRESIGN_TTL_SECONDS, Audience
from advisor_studio.integrity.models import DownloadLog
from advisor_studio.studio.models import Package
from tests.integrity.conftest import approved_package, link, package_state, tamper
from tests.integrity.test_downloads import cut_off, fetch, on_s3

PAYLOAD = os.urandom(4000)


@pytest.fixture
def asset(storage_app, people):
    """An approved package assigned to a partner's channel, the partner's API key, and an mcn user."""
    from tests.factories import make_user

    pkg = approved_package(storage_app, people, PAYLOAD)
    with storage_app.app_context():
        assignment = db.session.scalars(sa.select(Assignment).where(Assignment.package_id == pkg.package_id)).one()
        partner = db.session.get(Partner, pkg.partner_id)
        raw = distribution.issue_api_key(partner, actor="system")
        key = db.session.scalars(sa.select(PartnerApiKey).where(
            PartnerApiKey.key_hash == distribution.hash_api_key(raw))).one()
        mcn = make_user("mcn")
        mcn.partner_id = partner.id
        db.session.commit()
        return SimpleNamespace(**vars(pkg), assignment_id=assignment.id, key_id=key.id, mcn_id=mcn.id)


def api_audience(asset) -> Audience:
    return Audience(partner_id=asset.partner_id, api_key_id=asset.key_id, assignment_id=asset.assignment_id)


@pytest.fixture
def video_url(storage_app, asset):
    return link(storage_app, asset.rendition_id, api_audience(asset), filename="理财课 第1讲.mp4")


def other_partner(app) -> int:
    with app.app_context():
        other = Partner(name="别家MCN")
        db.session.add(other)
        db.session.commit()
        return other.id


def assert_gone(resp) -> None:
    assert resp.status_code == 410
    assert "no-store" in resp.headers["Cache-Control"]


# --- the approved bytes, uncached ---------------------------------------------------------------------


def test_partner_video_url_serves_the_approved_bytes_and_is_never_cached(storage_app, asset, video_url):
    first = storage_app.test_client().get(video_url)
    resp = fetch(storage_app, video_url)

    assert "no-store" in first.headers["Cache-Control"]
    assert resp.status_code == 200
    assert hashlib.sha256(resp.data).hexdigest() == asset.sha256
    assert "no-store" in resp.headers["Cache-Control"]


def test_partner_cover_url_serves_the_approved_cover(storage_app, asset):
    url = link(storage_app, asset.rendition_id, api_audience(asset), file_kind="cover")

    resp = fetch(storage_app, url)

    assert resp.status_code == 200
    assert resp.data.startswith(b"\xff\xd8cover")


def test_local_download_streams_in_bounded_chunks(storage_app, people):
    if on_s3(storage_app):
        pytest.skip("S3 links redirect; the app does not relay the bytes")
    big = approved_package(storage_app, people, os.urandom(3 * storage_module.CHUNK + 17))
    url = link(storage_app, big.rendition_id, Audience(partner_id=big.partner_id))

    resp = storage_app.test_client().get(url, buffered=False)
    sizes = [len(chunk) for chunk in resp.response]
    resp.close()

    assert sum(sizes) == len(big.data)
    assert len(sizes) > 3
    assert max(sizes) <= storage_module.CHUNK


# --- refusals ------------------------------------------------------------------------------------------


def test_tampered_token_answers_410_and_is_logged_as_refused(storage_app, asset, video_url):
    token = video_url.rsplit("/", 1)[1]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    assert_gone(storage_app.test_client().get(f"/files/{tampered}"))

    with storage_app.app_context():
        row = db.session.scalars(sa.select(DownloadLog).order_by(DownloadLog.id.desc())).first()
        assert (row.status, row.reason, row.partner_id) == (410, "invalid_link", None)


def test_expired_token_answers_410(storage_app, asset, video_url, monkeypatch):
    assert fetch(storage_app, video_url).status_code == 200
    later = time.time() + storage_app.config["DOWNLOAD_URL_TTL_SECONDS"] + 1
    monkeypatch.setattr(storage_module, "time", SimpleNamespace(time=lambda: later))

    assert_gone(storage_app.test_client().get(video_url))


def test_partner_cannot_download_other_partners_asset(storage_app, asset):
    other_id = other_partner(storage_app)
    # A link naming partner B and A's asset (as if B's API had issued it for an id it guessed).
    url = link(storage_app, asset.rendition_id, Audience(partner_id=other_id, assignment_id=asset.assignment_id))

    assert_gone(storage_app.test_client().get(url))
    with storage_app.app_context():
        row = db.session.scalars(sa.select(DownloadLog).order_by(DownloadLog.id.desc())).first()
        assert (row.status, row.reason, row.partner_id, row.assignment_id) == (
            410, "audience_revoked", other_id, asset.assignment_id)


def test_key_of_another_partner_does_not_unlock_the_asset(storage_app, asset):
    other_id = other_partner(storage_app)
    with storage_app.app_context():
        distribution.issue_api_key(db.session.get(Partner, other_id), actor="system")
        foreign_key = db.session.scalars(sa.select(PartnerApiKey.id).where(PartnerApiKey.partner_id == other_id)).one()
        db.session.commit()
    url = link(storage_app, asset.rendition_id, Audience(partner_id=asset.partner_id, api_key_id=foreign_key,
                                                         assignment_id=asset.assignment_id))

    assert_gone(storage_app.test_client().get(url))


def test_link_issued_through_a_revoked_key_answers_410(storage_app, asset, video_url):
    assert fetch(storage_app, video_url).status_code == 200
    with storage_app.app_context():
        distribution.revoke_api_key(db.session.get(PartnerApiKey, asset.key_id), actor="system", reason="泄露")
        db.session.commit()

    assert_gone(storage_app.test_client().get(video_url))


def test_link_of_a_deactivated_partner_answers_410(storage_app, asset, video_url):
    with storage_app.app_context():
        db.session.get(Partner, asset.partner_id).active = False
        db.session.commit()

    assert_gone(storage_app.test_client().get(video_url))


def test_withdrawn_asset_answers_410_inside_the_ttl(storage_app, people, asset, video_url):
    assert fetch(storage_app, video_url, headers={"Range": "bytes=0-9"}).status_code == 206
    with storage_app.app_context():
        compliance.withdraw(db.session.get(Package, asset.package_id),
                            db.session.get(User, people["compliance"].id), "误导性表述")
        db.session.commit()
        assert db.session.get(Assignment, asset.assignment_id).status == "withdrawn"

    assert_gone(storage_app.test_client().get(video_url))
    assert_gone(storage_app.test_client().get(video_url, headers={"Range": "bytes=0-9"}))


def test_asset_link_dies_when_the_asset_is_no_longer_live_even_if_the_package_is(storage_app, asset, video_url):
    # The asset ended (e.g. its channel was taken out of the distribution) while the approval is still live.
    with storage_app.app_context():
        db.session.execute(sa.update(Assignment).where(Assignment.id == asset.assignment_id)
                           .values(status="expired"))
        db.session.commit()

    assert_gone(storage_app.test_client().get(video_url))


def test_portal_link_of_an_mcn_user_moved_to_another_partner_answers_410(storage_app, asset):
    url = link(storage_app, asset.rendition_id, Audience(partner_id=asset.partner_id, user_id=asset.mcn_id,
                                                         assignment_id=asset.assignment_id))
    assert fetch(storage_app, url).status_code == 200
    other_id = other_partner(storage_app)
    with storage_app.app_context():
        db.session.get(User, asset.mcn_id).partner_id = other_id
        db.session.commit()

    assert_gone(storage_app.test_client().get(url))


def test_range_past_the_end_answers_416_with_the_size(storage_app, asset, video_url):
    size = len(asset.data)

    resp = storage_app.test_client().get(video_url, headers={"Range": f"bytes={size + 10}-"})

    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == f"bytes */{size}"
    assert "no-store" in resp.headers["Cache-Control"]


def test_range_inside_the_file_returns_exactly_those_bytes(storage_app, asset, video_url):
    resp = fetch(storage_app, video_url, headers={"Range": "bytes=100-199"})

    assert resp.status_code == 206
    assert resp.data == asset.data[100:200]


def test_tampered_rendition_is_refused_on_the_partner_path_and_alerts_compliance(storage_app, asset, video_url):
    tamper(storage_app, asset.key)

    if on_s3(storage_app):
        resp = storage_app.test_client().get(video_url)
        assert resp.status_code == 409
        assert resp.location is None
    else:
        received = cut_off(storage_app.test_client(), video_url)
        assert len(b"".join(received)) < len(asset.data)

    state = package_state(storage_app, asset.package_id)
    assert [(a[0], a[2], a[4]) for a in state.alerts] == [("video", asset.sha256, True)]
    assert state.live is False
    assert_gone(storage_app.test_client().get(video_url))


# --- the log -------------------------------------------------------------------------------------------


def test_every_partner_follow_is_logged_with_key_asset_range_bytes_and_truncated_ip(storage_app, asset, video_url):
    portal = link(storage_app, asset.rendition_id, Audience(partner_id=asset.partner_id, user_id=asset.mcn_id,
                                                            assignment_id=asset.assignment_id))
    fetch(storage_app, video_url, environ_base={"REMOTE_ADDR": "203.0.113.77"})
    fetch(storage_app, video_url, headers={"Range": "bytes=10-19"}, environ_base={"REMOTE_ADDR": "203.0.113.78"})
    fetch(storage_app, portal, environ_base={"REMOTE_ADDR": "2001:db8:1234:5678::1"})
    storage_app.test_client().get(video_url, headers={"Range": "bytes=999999-"},
                                  environ_base={"REMOTE_ADDR": "198.51.100.9"})

    with storage_app.app_context():
        rows = db.session.scalars(sa.select(DownloadLog).order_by(DownloadLog.id)).all()
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action.like("file.%"))
                                     .order_by(AuditEntry.seq)).all()
    whole, part = (302, 302) if on_s3(storage_app) else (200, 206)
    size = len(asset.data)
    assert [(r.partner_id, r.api_key_id, r.assignment_id, r.user_id, r.status, r.range_start, r.range_end,
             r.bytes_sent, r.ip_prefix) for r in rows] == [
        (asset.partner_id, asset.key_id, asset.assignment_id, None, whole, None, None, size, "203.0.113.0/24"),
        (asset.partner_id, asset.key_id, asset.assignment_id, None, part, 10, 19, 10, "203.0.113.0/24"),
        (asset.partner_id, None, asset.assignment_id, asset.mcn_id, whole, None, None, size, "2001:db8:1234::/48"),
        (asset.partner_id, asset.key_id, asset.assignment_id, None, 416, None, None, 0, "198.51.100.0/24"),
    ]
    assert all(r.at is not None for r in rows)
    assert entries[0].details["api_key_id"] == asset.key_id
    assert entries[0].details["assignment_id"] == asset.assignment_id
    assert entries[2].details["user_id"] == asset.mcn_id


# --- S3: a short-lived presigned redirect ----------------------------------------------------------------


def test_s3_redirect_is_a_presigned_get_of_at_most_60_seconds_with_the_file_name(storage_app, asset, video_url):
    if not on_s3(storage_app):
        pytest.skip("local storage streams through the app")

    resp = storage_app.test_client().get(video_url)

    assert resp.status_code == 302
    assert "no-store" in resp.headers["Cache-Control"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(resp.location).query).items()}
    # moto does not enforce presigned expiry, so the signed lifetime itself is checked.
    lifetime = int(query.get("X-Amz-Expires", 0)) or int(query["Expires"]) - int(time.time())
    assert 0 < lifetime <= PRESIGN_TTL_SECONDS
    disposition = parse_options_header(query["response-content-disposition"])
    assert disposition == ("attachment", {"filename": "理财课 第1讲.mp4"})
    assert "filename*=UTF-8''" in query["response-content-disposition"]
    direct = requests.get(resp.location, timeout=10)
    assert direct.status_code == 200
    assert hashlib.sha256(direct.content).hexdigest() == asset.sha256
    assert parse_options_header(direct.headers["Content-Disposition"])[1]["filename"] == "理财课 第1讲.mp4"
    assert "no-store" in direct.headers.get("Cache-Control", "")


def test_s3_presigned_lifetime_never_outlives_the_apps_own_link(storage_app, asset):
    if not on_s3(storage_app):
        pytest.skip("local storage streams through the app")
    url = link(storage_app, asset.rendition_id, api_audience(asset), ttl_seconds=20)

    resp = storage_app.test_client().get(url)

    query = parse_qs(urlsplit(resp.location).query)
    assert 0 < int(query["X-Amz-Expires"][0]) <= 20


def test_link_without_a_file_name_is_saved_under_the_package_title(storage_app, asset):
    url = link(storage_app, asset.rendition_id, api_audience(asset))
    with storage_app.app_context():
        title = db.session.get(Package, asset.package_id).title

    resp = storage_app.test_client().get(url)

    disposition = (resp.headers.get("Content-Disposition") if resp.status_code == 200
                   else parse_qs(urlsplit(resp.location).query)["response-content-disposition"][0])
    assert parse_options_header(disposition)[1]["filename"] == f"{title}.mp4"
