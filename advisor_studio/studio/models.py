"""Scripts, their frozen revisions, and packages (what compliance finally approves)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

TITLE_MAX = 120
CAPTION_MAX = 1000
BODY_MAX = 20_000
HASHTAG_MAX = 20

# Script statuses (pre-approval before filming).
SCRIPT_DRAFT = "draft"
SCRIPT_SUBMITTED = "submitted"
SCRIPT_CHANGES_REQUESTED = "changes_requested"
SCRIPT_APPROVED = "approved"
SCRIPT_REJECTED = "rejected"
SCRIPT_ARCHIVED = "archived"
SCRIPT_STATUSES = (SCRIPT_DRAFT, SCRIPT_SUBMITTED, SCRIPT_CHANGES_REQUESTED, SCRIPT_APPROVED,
                   SCRIPT_REJECTED, SCRIPT_ARCHIVED)

# Package statuses (final approval of the rendered video and everything around it).
PKG_DRAFT = "draft"
PKG_SUBMITTED = "submitted"
PKG_CHANGES_REQUESTED = "changes_requested"
PKG_APPROVED = "approved"
PKG_REJECTED = "rejected"
PKG_WITHDRAWN = "withdrawn"
PKG_EXPIRED = "expired"
PKG_ARCHIVED = "archived"
STATUS_LABELS = {
    "draft": _l("draft"), "submitted": _l("in review"), "changes_requested": _l("changes requested"),
    "approved": _l("approved"), "rejected": _l("rejected"), "withdrawn": _l("withdrawn"),
    "expired": _l("expired"), "archived": _l("archived"),
}
FIELD_LABELS = {"title": _l("title"), "body": _l("script text"), "caption": _l("caption")}

PACKAGE_STATUSES = (PKG_DRAFT, PKG_SUBMITTED, PKG_CHANGES_REQUESTED, PKG_APPROVED, PKG_REJECTED,
                    PKG_WITHDRAWN, PKG_EXPIRED, PKG_ARCHIVED)

# Which statuses allow what: the one place these lists live (services enforce, pages and lists show).
# Open work: the author's move (submit it); a package's rendition may still be swapped.
SCRIPT_OPEN = (SCRIPT_DRAFT, SCRIPT_CHANGES_REQUESTED)
PACKAGE_OPEN = (PKG_DRAFT, PKG_CHANGES_REQUESTED, PKG_EXPIRED)
# Editable: open work, plus approved content (editing it reopens it as a draft).
SCRIPT_EDITABLE = (*SCRIPT_OPEN, SCRIPT_APPROVED)
PACKAGE_EDITABLE = (*PACKAGE_OPEN, PKG_APPROVED)
# Still on its way to partners or with them: what a script's "next step" points to instead of a new package.
PACKAGE_IN_PROGRESS = (*PACKAGE_EDITABLE, PKG_SUBMITTED)
# In discussion: under review, or back with the author to change and resubmit. The author answers
# reviewers' comments only then; approved, rejected, withdrawn and archived content is settled (what
# was said stays on record, and a new round starts with a new submission).
SCRIPT_IN_DISCUSSION = (*SCRIPT_OPEN, SCRIPT_SUBMITTED)
PACKAGE_IN_DISCUSSION = (*PACKAGE_OPEN, PKG_SUBMITTED)


class Script(db.Model):
    """An advisor's working script; submitting it freezes a ScriptRevision."""

    __tablename__ = "scripts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    author_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(TITLE_MAX))
    body: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    caption: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    hashtags: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)
    platforms: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)
    status: so.Mapped[str] = so.mapped_column(sa.String(24), default=SCRIPT_DRAFT, index=True)
    # The newest frozen revision, and the newest one compliance pre-approved.
    latest_revision_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("script_revisions.id", use_alter=True))
    approved_revision_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("script_revisions.id", use_alter=True))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    # Optimistic lock: every UPDATE checks and bumps it, so a write based on a stale read fails.
    version: so.Mapped[int] = so.mapped_column(server_default=sa.text("1"))

    author = so.relationship("User", foreign_keys=[author_id], lazy="joined")
    revisions: so.Mapped[list[ScriptRevision]] = so.relationship(
        back_populates="script", foreign_keys="ScriptRevision.script_id", order_by="ScriptRevision.number")
    latest_revision: so.Mapped[ScriptRevision | None] = so.relationship(foreign_keys=[latest_revision_id],
                                                                         post_update=True)
    approved_revision: so.Mapped[ScriptRevision | None] = so.relationship(foreign_keys=[approved_revision_id],
                                                                           post_update=True)

    __table_args__ = (sa.CheckConstraint(sa.column("status").in_(SCRIPT_STATUSES), name="status_known"),)
    __mapper_args__ = {"version_id_col": version}


class ScriptRevision(db.Model):
    """An immutable snapshot of a script at submission, identified by its SHA-256."""

    __tablename__ = "script_revisions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    script_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("scripts.id"), index=True)
    number: so.Mapped[int]
    title: so.Mapped[str] = so.mapped_column(sa.String(TITLE_MAX))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    caption: so.Mapped[str] = so.mapped_column(sa.Text)
    hashtags: so.Mapped[list] = so.mapped_column(sa.JSON)
    platforms: so.Mapped[list] = so.mapped_column(sa.JSON)
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    scan_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("scans.id"))

    script: so.Mapped[Script] = so.relationship(back_populates="revisions", foreign_keys=[script_id])
    scan = so.relationship("Scan", foreign_keys=[scan_id])

    __table_args__ = (sa.UniqueConstraint("script_id", "number", name="uq_script_revisions_script_number"),)


package_channels = sa.Table(
    "package_channels",
    db.metadata,
    sa.Column("package_id", sa.ForeignKey("packages.id"), primary_key=True),
    sa.Column("channel_id", sa.ForeignKey("channels.id"), primary_key=True),
)


class Package(db.Model):
    """What compliance finally approves: a pre-approved script revision, the rendition, caption,
    subtitles and the target channels."""

    __tablename__ = "packages"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    author_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    script_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("scripts.id"), index=True)
    script_revision_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("script_revisions.id"))
    title: so.Mapped[str] = so.mapped_column(sa.String(TITLE_MAX))
    caption: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    hashtags: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)
    # Subtitles (SRT) as stored text plus its hash; the video pipeline burns them in.
    subtitles_srt: so.Mapped[str | None] = so.mapped_column(sa.Text)
    subtitles_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    cover_time_s: so.Mapped[float] = so.mapped_column(sa.Float, default=1.0)
    title_card: so.Mapped[bool] = so.mapped_column(default=False)
    # The rendition offered for review (the newest finished one the advisor chose).
    rendition_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("renditions.id", use_alter=True))
    status: so.Mapped[str] = so.mapped_column(sa.String(24), default=PKG_DRAFT, index=True)
    priority: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    # Optimistic lock: an edit, a submission and a decision each write only the version they read.
    version: so.Mapped[int] = so.mapped_column(server_default=sa.text("1"))

    author = so.relationship("User", foreign_keys=[author_id], lazy="joined")
    script: so.Mapped[Script] = so.relationship(foreign_keys=[script_id])
    script_revision: so.Mapped[ScriptRevision] = so.relationship(foreign_keys=[script_revision_id])
    rendition = so.relationship("Rendition", foreign_keys=[rendition_id], post_update=True)
    channels = so.relationship("Channel", secondary=package_channels, order_by="Channel.id")

    __table_args__ = (sa.CheckConstraint(sa.column("status").in_(PACKAGE_STATUSES), name="status_known"),)
    __mapper_args__ = {"version_id_col": version}
