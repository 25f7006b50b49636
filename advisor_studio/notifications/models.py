"""Notifications of one user about one object, and each user's e-mail preference.

A notification stores a kind, the object it is about and a few parameters (a title, a reason, a due
time); its text is rendered when it is read (``messages.py``), in the reader's language.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

# Kinds. Each has a message and a link target in messages.py; notify() refuses any other.
SCRIPT_APPROVED = "script_approved"
SCRIPT_CHANGES_REQUESTED = "script_changes_requested"
SCRIPT_REJECTED = "script_rejected"
PACKAGE_APPROVED = "package_approved"
PACKAGE_CHANGES_REQUESTED = "package_changes_requested"
PACKAGE_REJECTED = "package_rejected"
REVIEW_DUE = "review_due"  # a submission entered the queue
REVIEW_DUE_SOON = "review_due_soon"  # an open review is within REVIEW_DUE_SOON_HOURS of its due time
RENDER_FINISHED = "render_finished"
RENDER_FAILED = "render_failed"
KINDS = (SCRIPT_APPROVED, SCRIPT_CHANGES_REQUESTED, SCRIPT_REJECTED, PACKAGE_APPROVED, PACKAGE_CHANGES_REQUESTED,
         PACKAGE_REJECTED, REVIEW_DUE, REVIEW_DUE_SOON, RENDER_FINISHED, RENDER_FAILED)

# What a notification can be about; each maps to one page in messages.TARGETS.
OBJECT_TYPES = ("script", "package", "review")

# The unread rows of one user: the bell counts them on every page, so the index holds only them.
_UNREAD = sa.text("read_at IS NULL")
# A review is announced as due soon once: the database refuses a second row of one recipient and review.
_DUE_SOON = sa.text("kind = 'review_due_soon'")


class Notification(db.Model):
    """One message to one user about one object; read_at is set when the user opens it."""

    __tablename__ = "notifications"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    recipient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    object_type: so.Mapped[str] = so.mapped_column(sa.String(20))
    object_id: so.Mapped[int]
    # Values the message is rendered from (title, reason, due_at ...): plain JSON, never markup.
    params: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    read_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Set once the e-mail about it went out, so a retried send task never mails it twice.
    emailed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    recipient = so.relationship("User", foreign_keys=[recipient_id])

    __table_args__ = (
        sa.CheckConstraint(sa.column("object_type").in_(OBJECT_TYPES), name="object_type_known"),
        # The list page: a user's notifications, newest first.
        sa.Index("ix_notifications_recipient_list", "recipient_id", "id"),
        # The bell: COUNT of a user's unread notifications.
        sa.Index("ix_notifications_unread", "recipient_id", sqlite_where=_UNREAD, postgresql_where=_UNREAD),
        # The due-soon sweep: has this review been announced already?
        sa.Index("ix_notifications_object", "object_type", "object_id", "kind"),
        sa.Index("uq_notifications_due_soon_once", "recipient_id", "object_id", unique=True,
                 sqlite_where=_DUE_SOON, postgresql_where=_DUE_SOON),
    )

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationSetting(db.Model):
    """A user's choice about notification e-mail; no row means the default (e-mail on)."""

    __tablename__ = "notification_settings"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    email_enabled: so.Mapped[bool] = so.mapped_column(default=True)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
