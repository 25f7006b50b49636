"""Served rendition bytes are the approved bytes: tampering cuts the stream off, raises an alert and
suspends the approval; signed links are re-checked on every follow; every follow is logged."""

from __future__ import annotations

import hashlib
import os
import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from advisor_studio import audit
from advisor_studio import storage as storage_module
from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import Audience, IntegrityBreak
from advisor_studio.integrity.models import DownloadLog, VerifiedFile
from advisor_studio.integrity.services import truncate_ip
from advisor_studio.studio.models import Package
from tests.conftest import signed_in
from tests.factories import frozen_rows_unlocked
from tests.integrity.conftest import approved_package, fetch, link, package_state, tamper

PAYLOAD = os.urandom(3000)


def on_s3(app) -> bool:
    return app.config["STORAGE_BACKEND"] == "s3"


def refused_or_cut_off(app, url: str) -> list[bytes]:
    """A signed link to tampered bytes: on S3 (verified before the redirect) a 409, locally a broken stream."""
    if on_s3(app):
        resp = fetch(app, url)
        assert resp.status_code == 409
        return []
    return cut_off(app.test_client(), url)


def cut_off(client, url: str) -> list[bytes]:
    """Follow ``url`` as a WSGI server would and expect the body to break off; return what arrived."""
    received: list[bytes] = []
    with pytest.raises(IntegrityBreak):
        resp = client.get(url, buffered=False)
        try:
            for chunk in resp.response:
                received.append(chunk)
        finally:
            resp.close()
    return received


@pytest.fixture
def pkg(storage_app, people):
    return approved_package(storage_app, people, PAYLOAD)


@pytest.fixture
def partner_url(storage_app, pkg):
    return link(storage_app, pkg.rendition_id, Audience(partner_id=pkg.partner_id))


# --- verified streaming ------------------------------------------------------------------------------


def test_signed_link_serves_exactly_the_approved_bytes_and_records_the_verification(storage_app, pkg, partner_url):
    resp = fetch(storage_app, partner_url)

    assert resp.status_code == 200
    assert resp.data == pkg.data
    assert hashlib.sha256(resp.data).hexdigest() == pkg.sha256
    with storage_app.app_context():
        row = db.session.scalars(sa.select(VerifiedFile).where(VerifiedFile.storage_key == pkg.key)).one()
        assert row.sha256 == pkg.sha256


def test_full_download_of_a_tampered_approved_rendition_is_cut_off_and_suspends_the_approval(
        storage_app, people, pkg, partner_url):
    tamper(storage_app, pkg.key)

    refused_or_cut_off(storage_app, partner_url)

    state = package_state(storage_app, pkg.package_id)
    assert state.live is False
    assert state.status == "draft"
    assert len(state.alerts) == 1
    kind, where, expected, actual, is_open = state.alerts[0]
    assert (kind, where, expected, is_open) == ("video", "download", pkg.sha256, True)
    assert actual != pkg.sha256
    with storage_app.app_context():
        actions = set(db.session.scalars(sa.select(AuditEntry.action)))
    assert {"integrity.alert_raised", "approval.voided", "package.approval_voided"} <= actions

    # The next follow of the same link is refused: the approval is no longer live.
    assert fetch(storage_app, partner_url).status_code == 410

    officer = signed_in(storage_app, people["compliance"])
    home = officer.get("/").get_data(as_text=True)
    assert 'data-testid="landing-integrity"' in home
    assert "/compliance/integrity" in home
    health = storage_app.test_client().get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["integrity"] == "alert"


def test_tampered_stream_never_delivers_the_whole_body(storage_app, people):
    big = approved_package(storage_app, people, os.urandom(3 * 1024 * 1024))
    url = link(storage_app, big.rendition_id, Audience(partner_id=big.partner_id))
    tamper(storage_app, big.key, position=len(big.data) - 1)

    received = refused_or_cut_off(storage_app, url)

    assert len(b"".join(received)) < len(big.data)
    if not on_s3(storage_app):
        assert received


def test_in_app_preview_of_a_tampered_rendition_is_cut_off_and_then_refused(storage_app, people, pkg):
    tamper(storage_app, pkg.key)
    author = signed_in(storage_app, people["advisor"])

    cut_off(author, f"/studio/renditions/{pkg.rendition_id}/video.mp4")

    again = author.get(f"/studio/renditions/{pkg.rendition_id}/video.mp4")
    assert again.status_code == 409
    assert package_state(storage_app, pkg.package_id).live is False


def test_tampered_cover_is_detected_on_the_cover_route(storage_app, people, pkg):
    tamper(storage_app, pkg.cover_key, position=2)
    officer = signed_in(storage_app, people["compliance"])

    cut_off(officer, f"/studio/renditions/{pkg.rendition_id}/cover.jpg")

    assert [a[0] for a in package_state(storage_app, pkg.package_id).alerts] == ["cover"]


def test_review_page_rendition_route_verifies_the_bytes(storage_app, people, pkg):
    with storage_app.app_context():
        from advisor_studio.compliance.models import Review

        review_id = db.session.scalars(sa.select(Review.id).where(Review.package_id == pkg.package_id)).one()
    tamper(storage_app, pkg.key)
    officer = signed_in(storage_app, people["compliance2"])

    cut_off(officer, f"/compliance/reviews/{review_id}/rendition.mp4")
    assert package_state(storage_app, pkg.package_id).alerts


def test_rendition_row_changed_behind_the_approval_is_refused(storage_app, pkg, partner_url):
    from advisor_studio.video.models import Rendition

    with storage_app.app_context():
        db.session.get(Rendition, pkg.rendition_id).sha256 = "f" * 64
        db.session.commit()

    resp = fetch(storage_app, partner_url)

    assert resp.status_code == 409
    assert package_state(storage_app, pkg.package_id).live is False


# --- ranges ------------------------------------------------------------------------------------------


def test_range_request_on_an_unchanged_file_is_served_after_a_verification(storage_app, pkg, partner_url):
    resp = fetch(storage_app, partner_url, headers={"Range": "bytes=10-19"})

    assert resp.status_code == 206
    assert resp.data == pkg.data[10:20]
    with storage_app.app_context():
        assert db.session.scalars(sa.select(VerifiedFile.sha256)
                                  .where(VerifiedFile.storage_key == pkg.key)).one() == pkg.sha256


def test_range_request_after_tampering_is_refused_and_raises_the_alert(storage_app, pkg, partner_url):
    assert fetch(storage_app, partner_url).status_code == 200  # verified, fingerprint recorded
    tamper(storage_app, pkg.key, position=100)

    resp = fetch(storage_app, partner_url, headers={"Range": "bytes=0-9"})

    assert resp.status_code == 409
    assert resp.data != pkg.data[:10]
    state = package_state(storage_app, pkg.package_id)
    assert [(a[0], a[1]) for a in state.alerts] == [("video", "range")]
    assert state.live is False


def test_in_app_range_request_after_tampering_is_refused(storage_app, people, pkg):
    author = signed_in(storage_app, people["advisor"])
    url = f"/studio/renditions/{pkg.rendition_id}/video.mp4"
    assert author.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    tamper(storage_app, pkg.key, position=2000)

    resp = author.get(url, headers={"Range": "bytes=0-9"})

    assert resp.status_code == 409
    assert package_state(storage_app, pkg.package_id).alerts


def test_s3_upload_keeps_a_whole_object_sha256_checksum(storage_app, pkg):
    with storage_app.app_context():
        store = storage_module.get_storage()
        kept = store.stored_sha256(pkg.key)
    if isinstance(store, storage_module.S3Storage):
        assert kept == pkg.sha256
    else:
        assert kept is None


# --- signed links checked on every follow --------------------------------------------------------------


def test_link_issued_before_withdrawal_answers_410_after_it(storage_app, people, pkg, partner_url):
    assert fetch(storage_app, partner_url, headers={"Range": "bytes=0-9"}).status_code == 206

    with storage_app.app_context():
        compliance.withdraw(db.session.get(Package, pkg.package_id), db.session.get(User, people["compliance"].id),
                            "误导性表述")
        db.session.commit()

    assert fetch(storage_app, partner_url, headers={"Range": "bytes=0-9"}).status_code == 410
    assert fetch(storage_app, partner_url).status_code == 410


def test_link_after_the_approval_expired_answers_410(storage_app, pkg, partner_url):
    from advisor_studio.compliance.models import Approval
    from advisor_studio.dbtypes import utcnow

    with storage_app.app_context():
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == pkg.package_id)).one()
        with frozen_rows_unlocked("approvals"):  # the clock reaching the end of the approval period
            approval.expires_at = utcnow()
            db.session.flush()
        db.session.commit()

    assert fetch(storage_app, partner_url).status_code == 410


def test_link_for_a_deactivated_user_answers_410(storage_app, people, pkg):
    url = link(storage_app, pkg.rendition_id, Audience(user_id=people["compliance2"].id, role="compliance"))
    assert fetch(storage_app, url).status_code == 200

    with storage_app.app_context():
        db.session.get(User, people["compliance2"].id).active = False
        db.session.commit()

    assert fetch(storage_app, url).status_code == 410


def test_link_for_a_user_who_lost_the_role_answers_410(storage_app, people, pkg):
    from advisor_studio.accounts.models import UserRole

    url = link(storage_app, pkg.rendition_id, Audience(user_id=people["compliance2"].id, role="compliance"))
    assert fetch(storage_app, url).status_code == 200

    with storage_app.app_context():
        for row in db.session.scalars(sa.select(UserRole).where(UserRole.user_id == people["compliance2"].id)):
            db.session.delete(row)
        db.session.commit()

    assert fetch(storage_app, url).status_code == 410


def test_link_for_a_partner_no_longer_assigned_answers_410(storage_app, pkg, partner_url):
    from advisor_studio.distribution.models import Partner

    with storage_app.app_context():
        db.session.get(Partner, pkg.partner_id).active = False
        db.session.commit()

    assert fetch(storage_app, partner_url).status_code == 410


def test_link_for_another_partner_answers_410(storage_app, pkg):
    from advisor_studio.distribution.models import Partner

    with storage_app.app_context():
        other = Partner(name="别家MCN")
        db.session.add(other)
        db.session.commit()
        other_id = other.id

    assert fetch(storage_app, link(storage_app, pkg.rendition_id, Audience(partner_id=other_id))).status_code == 410


def test_forged_expired_or_purposeless_tokens_answer_410(storage_app, app_factory, pkg, partner_url, monkeypatch):
    token = partner_url.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    other_app = app_factory(SECRET_KEY="some-other-secret")
    forged = link(other_app, pkg.rendition_id, Audience(partner_id=pkg.partner_id)).rsplit("/", 1)[1]
    with storage_app.app_context():
        # The old form: a bare storage key, correctly signed with this app's key but naming no purpose.
        raw = storage_module._serializer().dumps({"k": pkg.key, "x": int(time.time()) + 600})

    assert fetch(storage_app, f"/files/{token}").status_code == 200
    for bad in (tampered, forged, raw, "not-a-token", token[: len(token) // 2]):
        assert fetch(storage_app, f"/files/{bad}").status_code == 410, bad

    later = time.time() + storage_app.config["DOWNLOAD_URL_TTL_SECONDS"] + 1
    monkeypatch.setattr(storage_module, "time", SimpleNamespace(time=lambda: later))
    assert fetch(storage_app, f"/files/{token}").status_code == 410


def test_download_token_refuses_to_sign_a_purposeless_token(storage_app):
    with storage_app.app_context(), pytest.raises(storage_module.StorageError):
        storage_module.download_token({}, 60)


# --- the download log ------------------------------------------------------------------------------------


def test_every_follow_writes_a_log_row_with_a_truncated_ip_and_an_audit_entry(storage_app, people, pkg, partner_url):
    fetch(storage_app, partner_url, environ_base={"REMOTE_ADDR": "203.0.113.77"})
    fetch(storage_app, partner_url, headers={"Range": "bytes=5-9"},
          environ_base={"REMOTE_ADDR": "2001:db8:1234:5678::1"})
    fetch(storage_app, partner_url, "HEAD", environ_base={"REMOTE_ADDR": "198.51.100.9"})
    fetch(storage_app, "/files/not-a-token", environ_base={"REMOTE_ADDR": "198.51.100.10"})
    author = signed_in(storage_app, people["advisor"])
    author.get(f"/studio/renditions/{pkg.rendition_id}/video.mp4", environ_base={"REMOTE_ADDR": "192.0.2.200"})

    with storage_app.app_context():
        rows = db.session.scalars(sa.select(DownloadLog).order_by(DownloadLog.id)).all()
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action.like("file.%"))
                                     .order_by(AuditEntry.seq)).all()
        assert audit.verify().ok
    got = [(r.partner_id, r.user_id, r.via, r.method, r.status, r.range_start, r.range_end, r.bytes_sent,
            r.ip_prefix) for r in rows]
    # On S3 a signed link answers with the redirect to the presigned GET; the row records what it covers.
    whole, part = (302, 302) if on_s3(storage_app) else (200, 206)
    assert got == [
        (pkg.partner_id, None, "signed", "GET", whole, None, None, len(pkg.data), "203.0.113.0/24"),
        (pkg.partner_id, None, "signed", "GET", part, 5, 9, 5, "2001:db8:1234::/48"),
        (pkg.partner_id, None, "signed", "HEAD", whole, None, None, 0, "198.51.100.0/24"),
        (None, None, "signed", "GET", 410, None, None, 0, "198.51.100.0/24"),
        (None, people["advisor"].id, "app", "GET", 200, None, None, len(pkg.data), "192.0.2.0/24"),
    ]
    assert [e.action for e in entries] == ["file.downloaded"] * 3 + ["file.download_refused", "file.downloaded"]
    assert entries[0].actor_label == f"partner:{pkg.partner_id}"
    assert entries[-1].actor_id == people["advisor"].id
    for row in rows:
        assert "77" not in (row.ip_prefix or "") and "5678" not in (row.ip_prefix or "")


@pytest.mark.parametrize(("address", "expected"), [
    ("203.0.113.77", "203.0.113.0/24"), ("2001:db8:abcd:1234::99", "2001:db8:abcd::/48"),
    ("::ffff:198.51.100.23", "198.51.100.0/24"), ("", None), ("not-an-ip", None),
])
def test_truncate_ip_keeps_only_the_network(address, expected):
    assert truncate_ip(address) == expected


def test_a_rendition_truncated_to_nothing_is_not_served_as_an_empty_file(storage_app, pkg, partner_url):
    with storage_app.app_context():
        store = storage_module.get_storage()
        if isinstance(store, storage_module.LocalStorage):
            store.local_path(pkg.key).write_bytes(b"")
        else:
            store.client.put_object(Bucket=store.bucket, Key=pkg.key, Body=b"")

    refused_or_cut_off(storage_app, partner_url)

    assert package_state(storage_app, pkg.package_id).live is False
