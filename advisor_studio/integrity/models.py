"""Integrity alerts, re-verification runs, the last full verification of each stored file, the download log."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

# Where a mismatch was detected.
DETECTED_DOWNLOAD = "download"  # a full GET hashed while streaming
DETECTED_RANGE = "range"  # the check before serving a byte range
DETECTED_SCHEDULED = "scheduled"  # the periodic re-verification
DETECTED_RESOLVE = "resolve"

RUN_QUEUED = "queued"
RUN_RUNNING = "running"
RUN_FINISHED = "finished"
RUN_FAILED = "failed"
RUN_STATUSES = (RUN_QUEUED, RUN_RUNNING, RUN_FINISHED, RUN_FAILED)

FILE_VIDEO = "video"
FILE_COVER = "cover"
FILE_KINDS = (FILE_VIDEO, FILE_COVER)


class IntegrityAlert(db.Model):
    """Stored bytes that no longer hash to what was recorded; open until an officer resolves it."""

    __tablename__ = "integrity_alerts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    storage_key: so.Mapped[str] = so.mapped_column(sa.String(255), index=True)
    file_kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    rendition_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("renditions.id"), index=True)
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    expected_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    # None when the object could not be read at all (missing or unreachable).
    actual_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    detected_by: so.Mapped[str] = so.mapped_column(sa.String(16))
    run_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("integrity_runs.id"))
    detected_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    approval_suspended: so.Mapped[bool] = so.mapped_column(default=False)
    resolved_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    resolved_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    resolution: so.Mapped[str | None] = so.mapped_column(sa.String(500))

    rendition = so.relationship("Rendition")
    package = so.relationship("Package")
    resolved_by = so.relationship("User")

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class IntegrityRun(db.Model):
    """One re-verification of every file of every live approval, with its progress."""

    __tablename__ = "integrity_runs"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default=RUN_QUEUED)
    requested_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    finished_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    total: so.Mapped[int] = so.mapped_column(default=0)
    checked: so.Mapped[int] = so.mapped_column(default=0)
    failures: so.Mapped[int] = so.mapped_column(default=0)
    error: so.Mapped[str | None] = so.mapped_column(sa.String(500))

    requested_by = so.relationship("User")

    __table_args__ = (sa.CheckConstraint(sa.column("status").in_(RUN_STATUSES), name="status_known"),)

    @property
    def is_active(self) -> bool:
        return self.status in (RUN_QUEUED, RUN_RUNNING)


class VerifiedFile(db.Model):
    """The last full hash of a stored file and the backend's fingerprint of it at that moment.

    A byte range cannot be hashed as it is served, so a range is only served while the file's
    fingerprint (local: size, mtime_ns, inode; S3: ETag and checksum) is the one recorded here.
    """

    __tablename__ = "verified_files"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    storage_key: so.Mapped[str] = so.mapped_column(sa.String(255), unique=True)
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    fingerprint: so.Mapped[str] = so.mapped_column(sa.String(255))
    verified_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class DownloadLog(db.Model):
    """One row per followed download (a video player's Range requests each get one)."""

    __tablename__ = "download_log"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    partner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    # For a partner's follow: the API key the link was issued to (NULL when issued in the portal).
    api_key_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partner_api_keys.id"))
    # For a partner's follow: the asset (assignment) the link was issued for.
    assignment_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("assignments.id"), index=True)
    rendition_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("renditions.id"), index=True)
    file_kind: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    via: so.Mapped[str] = so.mapped_column(sa.String(16))  # "signed" link or "app" page
    method: so.Mapped[str] = so.mapped_column(sa.String(8))
    range_start: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    range_end: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    # The body length the response announced (Content-Length); 0 for HEAD and refusals. For a redirect to
    # an S3 presigned GET (status 302): the length S3 is asked to send for the same request.
    bytes_sent: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    status: so.Mapped[int]
    reason: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    ip_prefix: so.Mapped[str | None] = so.mapped_column(sa.String(64))  # IPv4 /24, IPv6 /48, never more
