"""Lexicon versions, scans, reviews with anchored comments, and approvals pinned by hash."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

STAGE_SCRIPT = "script"
STAGE_PACKAGE = "package"
STAGES = (STAGE_SCRIPT, STAGE_PACKAGE)

DECISION_APPROVE = "approve"
DECISION_REQUEST_CHANGES = "request_changes"
DECISION_REJECT = "reject"
DECISIONS = (DECISION_APPROVE, DECISION_REQUEST_CHANGES, DECISION_REJECT)

# Partial unique indexes (the same predicate on SQLite and PostgreSQL): the database itself
# refuses a second open review of one subject and a second unvoided approval of one package.
_OPEN_PACKAGE_REVIEW = sa.text("stage = 'package' AND decision IS NULL AND superseded_at IS NULL")
_OPEN_SCRIPT_REVIEW = sa.text("stage = 'script' AND decision IS NULL AND superseded_at IS NULL")
_UNVOIDED_PACKAGE_APPROVAL = sa.text("stage = 'package' AND voided_at IS NULL")


# What made a lexicon version, when the system wrote its note (LexiconVersion.note_code).
NOTE_DEFAULT = "default"  # the bundled default lexicon was loaded
NOTE_ADD = "add"  # {"phrase"}
NOTE_EDIT = "edit"  # {"phrase"}
NOTE_REMOVE = "remove"  # {"phrase", "reason"}
NOTE_IMPORT = "import"  # {"rows"}: a CSV imported without a note
NOTE_IMPORT_FILE = "import_file"  # {"file"}: a file imported on the command line without a note


class LexiconVersion(db.Model):
    """One state of the lexicon; every change (add, edit, remove, import) makes a new version."""

    __tablename__ = "lexicon_versions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    number: so.Mapped[int] = so.mapped_column(unique=True)
    # The note as recorded (English for the notes the system writes; what a person typed otherwise).
    note: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    # For a note the system wrote: its code (NOTE_*) and parameters, rendered in the reader's language
    # (compliance.queries.version_note). NULL for a typed note and for versions made before codes existed.
    note_code: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    note_args: so.Mapped[dict | None] = so.mapped_column(sa.JSON)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    entry_count: so.Mapped[int] = so.mapped_column(default=0)


class LexiconRule(db.Model):
    """A phrase in force from ``added_in`` until ``removed_in`` (exclusive); edits replace rows."""

    __tablename__ = "lexicon_rules"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    phrase: so.Mapped[str] = so.mapped_column(sa.String(200))
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))  # forbidden / required / allow
    severity: so.Mapped[str] = so.mapped_column(sa.String(8), default="")  # block / warn
    category: so.Mapped[str] = so.mapped_column(sa.String(40), default="")
    note: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    platforms: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)
    group: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    # A compliant rewording shown with the findings of this phrase ("" when there is none).
    suggestion: so.Mapped[str] = so.mapped_column(sa.String(500), default="", server_default="")
    added_in: so.Mapped[int] = so.mapped_column(index=True)
    removed_in: so.Mapped[int | None] = so.mapped_column(index=True)

    __table_args__ = (
        sa.CheckConstraint(sa.column("kind").in_(("forbidden", "required", "allow")), name="kind_known"),
    )


class Scan(db.Model):
    """The result of one pre-check: which text, which lexicon version, what was found."""

    __tablename__ = "scans"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    subject_type: so.Mapped[str] = so.mapped_column(sa.String(32))  # script_revision / package
    subject_id: so.Mapped[int]
    lexicon_version: so.Mapped[int]
    platform: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    text_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    blocking: so.Mapped[bool]
    # {"fields": {"body": [finding...], "caption": [...], "subtitles": [...]}, "subtitle_lines": [...]}
    findings: so.Mapped[dict] = so.mapped_column(sa.JSON)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.Index("ix_scans_subject", "subject_type", "subject_id"),)


class Review(db.Model):
    """One submission in the queue and, once decided, its decision."""

    __tablename__ = "reviews"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    stage: so.Mapped[str] = so.mapped_column(sa.String(16), index=True)
    script_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("scripts.id"), index=True)
    script_revision_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("script_revisions.id"))
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    author_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    submitted_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    due_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, index=True)
    priority: so.Mapped[int] = so.mapped_column(default=0)
    # Hash of the manifest as submitted; a decision on anything else is refused.
    manifest: so.Mapped[dict] = so.mapped_column(sa.JSON)
    manifest_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    scan_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("scans.id"))
    claimed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    claimed_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    claimed_manifest_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    decision: so.Mapped[str | None] = so.mapped_column(sa.String(20), index=True)
    decided_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    decided_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # Set when a newer submission or a change made this review moot before a decision.
    superseded_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    author = so.relationship("User", foreign_keys=[author_id])
    claimed_by = so.relationship("User", foreign_keys=[claimed_by_id])
    decided_by = so.relationship("User", foreign_keys=[decided_by_id])
    script = so.relationship("Script", foreign_keys=[script_id])
    script_revision = so.relationship("ScriptRevision", foreign_keys=[script_revision_id])
    package = so.relationship("Package", foreign_keys=[package_id])
    scan = so.relationship("Scan", foreign_keys=[scan_id])
    comments: so.Mapped[list[ReviewComment]] = so.relationship(back_populates="review",
                                                               order_by="ReviewComment.id")

    __table_args__ = (
        sa.CheckConstraint(sa.column("stage").in_(STAGES), name="stage_known"),
        sa.Index("ix_reviews_open", "decision", "superseded_at", "due_at"),
        sa.Index("uq_reviews_one_open_per_package", "package_id", unique=True,
                 sqlite_where=_OPEN_PACKAGE_REVIEW, postgresql_where=_OPEN_PACKAGE_REVIEW),
        sa.Index("uq_reviews_one_open_per_script", "script_id", unique=True,
                 sqlite_where=_OPEN_SCRIPT_REVIEW, postgresql_where=_OPEN_SCRIPT_REVIEW),
    )

    @property
    def is_open(self) -> bool:
        return self.decision is None and self.superseded_at is None

    @property
    def subject(self):
        """What this review is about: the package (final review) or the script (pre-approval)."""
        return self.package if self.stage == STAGE_PACKAGE else self.script


class ReviewComment(db.Model):
    """A threaded comment, anchored to a text span of a field or to a video timecode."""

    __tablename__ = "review_comments"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    review_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("reviews.id"), index=True)
    parent_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("review_comments.id"))
    author_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    anchor_field: so.Mapped[str | None] = so.mapped_column(sa.String(20))  # body / caption / subtitles
    anchor_start: so.Mapped[int | None]
    anchor_end: so.Mapped[int | None]
    anchor_text: so.Mapped[str | None] = so.mapped_column(sa.Text)
    timecode_ms: so.Mapped[int | None]
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    review: so.Mapped[Review] = so.relationship(back_populates="comments")
    author = so.relationship("User")


class Approval(db.Model):
    """The SHA-256 of exactly what was approved; void once anything in it changes or it expires."""

    __tablename__ = "approvals"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    review_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("reviews.id"), unique=True)
    stage: so.Mapped[str] = so.mapped_column(sa.String(16))
    script_revision_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("script_revisions.id"), index=True)
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    manifest: so.Mapped[dict] = so.mapped_column(sa.JSON)
    manifest_sha256: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    approved_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    approved_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime, index=True)
    voided_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    void_reason: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    # Set when a lexicon re-scan finds a new blocking finding in approved content.
    flagged_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    flag_scan_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("scans.id"))
    # The signature: the factor the officer last confirmed with (password / totp / recovery_code) and when.
    # NULL for approvals made outside a signed-in session (seed-demo, tests of the service).
    signed_factor: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    signed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    review = so.relationship("Review")
    approved_by = so.relationship("User")

    __table_args__ = (
        sa.Index("uq_approvals_one_unvoided_per_package", "package_id", unique=True,
                 sqlite_where=_UNVOIDED_PACKAGE_APPROVAL, postgresql_where=_UNVOIDED_PACKAGE_APPROVAL),
    )

    def is_live(self, now: datetime) -> bool:
        """Whether this approval is live at ``now``; the rule itself lives in compliance.approvals."""
        from advisor_studio.compliance import approvals
        from advisor_studio.studio.models import Package

        package = db.session.get(Package, self.package_id) if self.package_id is not None else None
        return approvals.is_live(self, package, now)
