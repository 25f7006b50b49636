"""Builders shared by the portal tests: partners with mcn users, approved assets on chosen channels."""

from __future__ import annotations

import io

import sqlalchemy as sa

from advisor_studio import storage
from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.distribution.models import Assignment, Channel, Partner
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from tests.conftest import record_of
from tests.factories import make_channel, make_ready_rendition, make_user
from tests.studio.test_pages import approved_script, decide_open_review


def _cover_jpeg() -> bytes:
    """A real 9:16 JPEG, so that browsers show it (the server never decodes it)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (180, 320), (140, 28, 19))
    ImageDraw.Draw(image).rectangle((20, 120, 160, 200), fill=(250, 240, 230))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


COVER_BYTES = _cover_jpeg()


def channel(app, partner: str, platform: str = "douyin", handle: str | None = None) -> int:
    """A channel of ``partner`` (created on first use); its id."""
    with app.app_context():
        made = make_channel(partner, platform, handle)
        db.session.commit()
        return made.id


def partner_user(app, partner: str):
    """A committed mcn user linked to ``partner`` (the partner is created if needed)."""
    with app.app_context():
        found = db.session.scalar(sa.select(Partner).where(Partner.name == partner))
        if found is None:
            found = Partner(name=partner)
            db.session.add(found)
            db.session.flush()
        user = make_user("mcn")
        user.partner_id = found.id
        db.session.commit()
        return record_of(user)


def approved_asset(app, users, channel_ids: list[int], *, title: str = "资产配置三原则",
                   cover: bool = True) -> tuple[int, list[int]]:
    """An approved package (with a stored cover) targeting ``channel_ids``; (package id, assignment ids)."""
    script_id = approved_script(app, users["advisor"].id, users["compliance"].id, title=title)
    with app.app_context():
        author = db.session.get(User, users["advisor"].id)
        package = studio.create_package(db.session.get(Script, script_id), author, channel_ids=channel_ids)
        rendition = make_ready_rendition(package)
        if cover:
            stored = storage.get_storage().put_stream(io.BytesIO(COVER_BYTES), storage.new_key("covers", ".jpg"))
            rendition.cover_key, rendition.cover_sha256 = stored.key, stored.sha256
        studio.set_rendition(package, rendition, author)
        db.session.commit()
        studio.submit_package(db.session.get(Package, package.id), author)
        db.session.commit()
        package_id = package.id
    decide_open_review(app, users["compliance"].id, package_id=package_id)
    with app.app_context():
        ids = list(db.session.scalars(sa.select(Assignment.id).where(Assignment.package_id == package_id)
                                      .order_by(Assignment.id)))
    return package_id, ids


def withdraw(app, users, package_id: int, reason: str = "误导性表述") -> None:
    with app.app_context():
        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id), reason)
        db.session.commit()


def channel_platform(app, channel_id: int) -> str:
    with app.app_context():
        return db.session.get(Channel, channel_id).platform
