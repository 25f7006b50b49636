"""Uploaded source videos and their renditions (the rendered, disclosure-burned masters)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

RENDER_QUEUED = "queued"
RENDER_RUNNING = "running"
RENDER_READY = "ready"
RENDER_FAILED = "failed"
RENDER_STATUSES = (RENDER_QUEUED, RENDER_RUNNING, RENDER_READY, RENDER_FAILED)


class SourceVideo(db.Model):
    """A probed, accepted upload; kept as uploaded (never modified)."""

    __tablename__ = "source_videos"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    package_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    uploaded_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    storage_key: so.Mapped[str] = so.mapped_column(sa.String(255), unique=True)
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    size_bytes: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    original_name: so.Mapped[str] = so.mapped_column(sa.String(255))  # display only
    probe: so.Mapped[dict] = so.mapped_column(sa.JSON)
    duration_s: so.Mapped[float] = so.mapped_column(sa.Float)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class Rendition(db.Model):
    """One render of a source with one recipe; immutable once ready (it may have been approved)."""

    __tablename__ = "renditions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    package_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    source_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("source_videos.id"), index=True)
    recipe: so.Mapped[dict] = so.mapped_column(sa.JSON)
    recipe_hash: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default=RENDER_QUEUED, index=True)
    progress: so.Mapped[float] = so.mapped_column(sa.Float, default=0.0)
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    task_id: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    storage_key: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    size_bytes: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    duration_s: so.Mapped[float | None] = so.mapped_column(sa.Float)
    width: so.Mapped[int | None]
    height: so.Mapped[int | None]
    cover_key: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    cover_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    started_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    finished_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    source: so.Mapped[SourceVideo] = so.relationship()
    package = so.relationship("Package", foreign_keys=[package_id])

    __table_args__ = (sa.CheckConstraint(sa.column("status").in_(RENDER_STATUSES), name="status_known"),)

    @property
    def is_ready(self) -> bool:
        return self.status == RENDER_READY and bool(self.storage_key and self.sha256)


class DisclaimerTemplate(db.Model):
    """The risk-disclosure text burned into every rendition; owned and versioned by compliance."""

    __tablename__ = "disclaimer_templates"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    version: so.Mapped[int] = so.mapped_column(unique=True)
    text: so.Mapped[str] = so.mapped_column(sa.String(200))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
