"""Test data builders that go through the real services."""

from __future__ import annotations

import itertools
from contextlib import contextmanager

from advisor_studio.accounts import services

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)


def sac_number(n: int) -> str:
    return f"S{n:013d}"


def make_user(*roles: str, email: str | None = None, password: str = PASSWORD, name: str | None = None,
              sac: str | None = None, actor=None):
    """Create (flush, not commit) a user with ``roles``; advisors get a unique SAC number."""
    n = next(_counter)
    roles = roles or ("advisor",)
    email = email or f"{'-'.join(roles)}{n}@example.com"
    if "advisor" in roles and sac is None:
        sac = sac_number(1_000_000 + n)
    user = services.create_user(email=email, password=password, roles=list(roles), name=name or f"User {n}",
                                sac_number=sac, actor=actor)
    user.test_password = password
    return user


LEGAL_BODY = (
    "大家好，我是王晓明，执业证书编号{sac}。今天聊聊资产配置的基本思路：分散投资、长期持有、控制回撤。"
    "投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
)


def make_channel(partner_name: str = "星河MCN", platform: str = "douyin", handle: str | None = None):
    """A partner (created once per name) with one channel."""
    import sqlalchemy as sa

    from advisor_studio.distribution.models import Channel, Partner
    from advisor_studio.extensions import db

    partner = db.session.scalar(sa.select(Partner).where(Partner.name == partner_name))
    if partner is None:
        partner = Partner(name=partner_name)
        db.session.add(partner)
        db.session.flush()
    channel = Channel(partner_id=partner.id, platform=platform, handle=handle or f"h{next(_counter)}")
    db.session.add(channel)
    db.session.flush()
    return channel


def partner_api_key(app, partner_name: str) -> str:
    """A fresh raw API key of ``partner_name`` (the partner is created with one channel if it is new)."""
    import sqlalchemy as sa

    from advisor_studio.distribution import services as distribution
    from advisor_studio.distribution.models import Partner
    from advisor_studio.extensions import db

    with app.app_context():
        partner = db.session.scalar(sa.select(Partner).where(Partner.name == partner_name))
        if partner is None:
            partner, raw = distribution.create_partner(partner_name, ["kuaishou:@other-" + partner_name],
                                                       actor="test")
        else:
            raw = distribution.issue_api_key(partner, actor="test")
        db.session.commit()
        return raw


def legal_script_body(user) -> str:
    profile = user.advisor_profile
    return LEGAL_BODY.replace("王晓明", profile.real_name).format(sac=profile.sac_number)


def ensure_lexicon():
    from advisor_studio.compliance import services as compliance

    compliance.ensure_default_lexicon("test")


def make_ready_rendition(package, payload: bytes = b"\x00\x00\x00\x18ftypmp42 not a real video", *,
                         current: bool = True):
    """A finished rendition row backed by real stored bytes (render tests cover real video).

    ``current=False`` gives it a recipe hash that matches no inputs (a stale rendition).
    """
    import io

    from advisor_studio import storage
    from advisor_studio.extensions import db
    from advisor_studio.video import services as video
    from advisor_studio.video.models import RENDER_READY, Rendition, SourceVideo

    store = storage.get_storage()
    src = store.put_stream(io.BytesIO(payload), storage.new_key("sources", ".mp4"))
    source = SourceVideo(package_id=package.id, uploaded_by_id=package.author_id, storage_key=src.key,
                         sha256=src.sha256, size_bytes=src.size, original_name="clip.mp4", probe={},
                         duration_s=12.0)
    db.session.add(source)
    db.session.flush()
    out = store.put_stream(io.BytesIO(payload + b"rendered"), storage.new_key("renditions", ".mp4"))
    # Made from the package's current inputs with this (now newest) source, as a real render would be.
    inputs = video.recipe_inputs(package)
    recipe_hash = video.inputs_hash(source.sha256, inputs) if current else "0" * 64
    rendition = Rendition(package_id=package.id, source_id=source.id, recipe={"request": inputs},
                          recipe_hash=recipe_hash, status=RENDER_READY, progress=100.0, storage_key=out.key,
                          sha256=out.sha256, size_bytes=out.size, duration_s=12.0, width=1080, height=1920)
    db.session.add(rendition)
    db.session.flush()
    return rendition


@contextmanager
def frozen_rows_unlocked(table: str):
    """Test-only: lift ``table``'s immutability trigger inside the current transaction.

    For fixture rows in states the services never write (an approval without an expiry, a
    script-stage row turned into a package one), as a database administrator could. The
    trigger is back before the transaction ends; flush inside the block.
    """
    from advisor_studio.extensions import db

    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_frozen")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {table}_frozen")
        return
    triggers = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                    (f"{table}_frozen",)).all()
    for name, _sql in triggers:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    try:
        yield
    finally:
        for _name, sql in triggers:
            conn.exec_driver_sql(sql)
