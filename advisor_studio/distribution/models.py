"""MCN partners and the platform accounts (channels) they run."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

PLATFORMS = ("douyin", "kuaishou", "bilibili", "wechat_channels", "xiaohongshu")
PLATFORM_LABELS = {
    "douyin": _l("Douyin"),
    "kuaishou": _l("Kuaishou"),
    "bilibili": _l("Bilibili"),
    "wechat_channels": _l("WeChat Channels"),
    "xiaohongshu": _l("Xiaohongshu"),
}


class Partner(db.Model):
    """An MCN agency."""

    __tablename__ = "partners"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    webhook_url: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    webhook_secret: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    channels: so.Mapped[list[Channel]] = so.relationship(back_populates="partner", order_by="Channel.id")
    api_keys: so.Mapped[list[PartnerApiKey]] = so.relationship(back_populates="partner")


class Channel(db.Model):
    """One partner account on one platform."""

    __tablename__ = "channels"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    platform: so.Mapped[str] = so.mapped_column(sa.String(32))
    handle: so.Mapped[str] = so.mapped_column(sa.String(120))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    partner: so.Mapped[Partner] = so.relationship(back_populates="channels")

    __table_args__ = (
        sa.UniqueConstraint("platform", "handle", name="uq_channels_platform_handle"),
        sa.CheckConstraint(sa.column("platform").in_(PLATFORMS), name="platform_known"),
    )

    @property
    def label(self) -> str:
        return f"{self.partner.name} · {self.platform}:{self.handle}"


class PartnerApiKey(db.Model):
    """A partner API key, stored only as a SHA-256 hash; shown once at creation."""

    __tablename__ = "partner_api_keys"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    prefix: so.Mapped[str] = so.mapped_column(sa.String(16))
    key_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    partner: so.Mapped[Partner] = so.relationship(back_populates="api_keys")
