"""Helpers for integrity tests: an approved package with known stored bytes, on local storage or S3."""

from __future__ import annotations

import io
import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from tests.factories import ensure_lexicon, make_channel, make_ready_rendition
from tests.studio.test_pages import approved_script, decide_open_review


@pytest.fixture(params=["local", "s3"])
def storage_app(request, app_factory):
    """The app on the local backend, or on S3 (moto over HTTP) with a fresh bucket per test."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        app = app_factory(STORAGE_BACKEND="s3", S3_ENDPOINT_URL=endpoint, S3_BUCKET=f"test-{uuid.uuid4().hex}",
                          S3_CREATE_BUCKET=True, S3_REGION="us-east-1")
    else:
        app = app_factory(STORAGE_BACKEND="local")
    with app.app_context():
        ensure_lexicon()
        db.session.commit()
    return app


@pytest.fixture
def people(storage_app):
    """Committed users (as plain records) on the storage app's database."""
    from tests.conftest import record_of
    from tests.factories import make_user

    with storage_app.app_context():
        made = {"advisor": make_user("advisor"), "compliance": make_user("compliance"),
                "compliance2": make_user("compliance"), "admin": make_user("admin")}
        db.session.commit()
        return {key: record_of(user) for key, user in made.items()}


def approved_package(app, people, payload: bytes, *, exact: bool = False) -> SimpleNamespace:
    """An approved package whose rendition (video and cover) is stored; returns ids, keys and bytes.

    With ``exact`` the rendition's stored bytes are ``payload`` itself (the factory appends a marker).
    """
    script_id = approved_script(app, people["advisor"].id, people["compliance"].id)
    with app.app_context():
        author = db.session.get(User, people["advisor"].id)
        channel = make_channel(handle=f"h{uuid.uuid4().hex[:8]}")
        package = studio.create_package(db.session.get(Script, script_id), author, channel_ids=[channel.id])
        rendition = make_ready_rendition(package, payload)
        from advisor_studio import storage

        if exact:
            out = storage.get_storage().put_stream(io.BytesIO(payload), storage.new_key("renditions", ".mp4"))
            rendition.storage_key, rendition.sha256, rendition.size_bytes = out.key, out.sha256, out.size

        cover = storage.get_storage().put_stream(io.BytesIO(b"\xff\xd8cover" + payload[:50]),
                                                 storage.new_key("covers", ".jpg"))
        rendition.cover_key, rendition.cover_sha256 = cover.key, cover.sha256
        studio.set_rendition(package, rendition, author)
        db.session.commit()
        studio.submit_package(package, author)
        db.session.commit()
        ids = SimpleNamespace(package_id=package.id, rendition_id=rendition.id, key=rendition.storage_key,
                              cover_key=cover.key, partner_id=channel.partner_id,
                              data=payload if exact else payload + b"rendered",
                              sha256=rendition.sha256)
    decide_open_review(app, people["compliance"].id, package_id=ids.package_id)
    return ids


def follow_presigned(location: str, method: str = "GET", headers: dict | None = None) -> SimpleNamespace:
    """What a client gets from S3 (moto over HTTP) when it follows the app's redirect, re-sending its
    Range and If-Range headers as browsers and players do."""
    import requests

    sent = {k: v for k, v in (headers or {}).items() if k in ("Range", "If-Range")}
    answer = requests.request(method, location, headers=sent, timeout=10)
    return SimpleNamespace(status_code=answer.status_code, data=answer.content, headers=answer.headers)


def fetch(app, url: str, method: str = "GET", **kwargs):
    """Follow ``url`` through the test client; on S3 a signed link answers with a redirect to a presigned
    GET, which is followed too."""
    resp = app.test_client().open(url, method=method, buffered=True, **kwargs)
    if resp.status_code == 302 and resp.location.startswith("http"):
        return follow_presigned(resp.location, method, kwargs.get("headers"))
    return resp


def tamper(app, key: str, position: int = 5) -> None:
    """Flip one byte of a stored object behind the application's back (disk or S3)."""
    from advisor_studio import storage

    with app.app_context():
        store = storage.get_storage()
        if isinstance(store, storage.LocalStorage):
            with open(store.local_path(key), "r+b") as fh:
                fh.seek(position)
                byte = fh.read(1)
                fh.seek(position)
                fh.write(bytes([byte[0] ^ 0x01]))
            return
        body = store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read()
        flipped = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1:]
        store.client.put_object(Bucket=store.bucket, Key=key, Body=flipped)


def link(app, rendition_id: int, audience, **kwargs) -> str:
    from advisor_studio.integrity.downloads import rendition_link
    from advisor_studio.video.models import Rendition

    with app.test_request_context():
        return rendition_link(db.session.get(Rendition, rendition_id), audience, **kwargs)


def package_state(app, package_id: int) -> SimpleNamespace:
    from advisor_studio.compliance import services as compliance
    from advisor_studio.integrity.models import IntegrityAlert

    with app.app_context():
        package = db.session.get(Package, package_id)
        alerts = db.session.scalars(sa.select(IntegrityAlert).where(IntegrityAlert.package_id == package_id)).all()
        return SimpleNamespace(status=package.status, live=compliance.live_approval(package) is not None,
                               alerts=[(a.file_kind, a.detected_by, a.expected_sha256, a.actual_sha256,
                                        a.resolved_at is None) for a in alerts])
