"""Every state change of notifications: creating them (``notify``, called by the features where the
events happen), reading them, the e-mail preference and the due-soon sweep. Services flush, never commit.

Reading a notification is the reader's own inbox state, not a record of the business: it is not
written to the audit trail (it would drown it). The e-mail preference is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value

from advisor_studio import audit
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import NotFound
from advisor_studio.extensions import db
from advisor_studio.notifications import queries
from advisor_studio.notifications.messages import TARGETS
from advisor_studio.notifications.models import KINDS, REVIEW_DUE_SOON, Notification, NotificationSetting
from advisor_studio.tasks_util import enqueue_after_commit

log = logging.getLogger(__name__)

PARAM_TEXT_MAX = 300  # a title or reason is stored shortened: the notification points at the full text
DUE_SOON_BATCH = 200  # reviews announced per sweep; the next sweep takes the rest


def _param(value):
    if isinstance(value, str) and len(value) > PARAM_TEXT_MAX:
        return value[: PARAM_TEXT_MAX - 1] + "…"
    return value


def notify(kind: str, recipients: Iterable, *, object_type: str, object_id: int,
           params: dict | None = None) -> list[int]:
    """Notify each recipient (a user or a user id) about one object, in the caller's transaction.

    Never fails the event that called it: rows that cannot be written are logged and left out (their
    savepoint is rolled back; the event's own changes stay). With MAIL_SERVER set, the e-mails go out
    from a task queued once the transaction commits. Returns the new notifications' ids.
    """
    if kind not in KINDS or object_type not in TARGETS:
        log.error("notification of unknown kind %r or object type %r not written", kind, object_type)
        return []
    user_ids = sorted({getattr(r, "id", r) for r in recipients if r is not None})
    if not user_ids:
        return []
    now = utcnow()
    clean = {key: _param(value) for key, value in (params or {}).items()}
    rows = [{"recipient_id": uid, "kind": kind, "object_type": object_type, "object_id": object_id,
             "params": clean, "created_at": now} for uid in user_ids]
    db.session.flush()  # the event's own pending changes first: their errors are the event's, not ours
    try:
        with db.session.begin_nested():
            ids = list(db.session.scalars(sa.insert(Notification).returning(Notification.id), rows))
    except SQLAlchemyError:
        log.exception("notifications %s about %s %s not written", kind, object_type, object_id)
        return []
    if queries.mail_configured():
        from advisor_studio.notifications import tasks

        enqueue_after_commit(tasks.send_emails, ids)
    return ids


def _require_recipient(notification: Notification, user) -> None:
    from advisor_studio.notifications.permissions import can_open

    if not can_open(user, notification):
        raise NotFound(_("Page not found"))  # another user's notification does not exist for this one


def mark_read(notification: Notification, user) -> bool:
    """Mark one of the user's notifications read; False when it already was."""
    _require_recipient(notification, user)
    now = utcnow()
    result = db.session.execute(
        sa.update(Notification).where(Notification.id == notification.id, Notification.recipient_id == user.id,
                                      Notification.read_at.is_(None))
        .values(read_at=now).execution_options(synchronize_session=False))
    if result.rowcount:
        set_committed_value(notification, "read_at", now)  # what the UPDATE wrote; nothing more to flush
    return bool(result.rowcount)


def mark_all_read(user, up_to_id: int | None = None) -> int:
    """Mark the user's unread notifications read, up to ``up_to_id`` (the newest one the page showed, so
    one that arrived after the page was drawn stays unread); returns how many."""
    stmt = sa.update(Notification).where(Notification.recipient_id == user.id, Notification.read_at.is_(None))
    if up_to_id is not None:
        stmt = stmt.where(Notification.id <= up_to_id)
    result = db.session.execute(stmt.values(read_at=utcnow()).execution_options(synchronize_session=False))
    db.session.expire_all()
    return result.rowcount or 0


def set_email_enabled(user, enabled: bool) -> NotificationSetting:
    """The user turns notification e-mail on or off (audited)."""
    setting = db.session.get(NotificationSetting, user.id)
    if setting is None:
        setting = NotificationSetting(user_id=user.id, email_enabled=bool(enabled))
        db.session.add(setting)
    elif setting.email_enabled == bool(enabled):
        return setting
    setting.email_enabled = bool(enabled)
    setting.updated_at = utcnow()
    db.session.flush()
    audit.record("notification.email_preference", "user", user.id, actor=user,
                 details={"email_enabled": bool(enabled)})
    return setting


def mark_emailed(notification: Notification) -> None:
    """Record that the e-mail about this notification went out."""
    notification.emailed_at = utcnow()
    db.session.flush()


def notify_reviews_due_soon(now: datetime | None = None) -> int:
    """Tell the officers who may decide it about each open review due within REVIEW_DUE_SOON_HOURS
    (or already overdue) that was not announced yet; each review once. Returns how many reviews."""
    from advisor_studio.compliance.models import STAGE_PACKAGE, Review
    from advisor_studio.compliance.services import REVIEW_IS_OPEN

    hours = current_app.config.get("REVIEW_DUE_SOON_HOURS", 4)
    if not hours or hours <= 0:
        return 0
    now = now or utcnow()
    announced = sa.exists().where(Notification.object_type == "review", Notification.object_id == Review.id,
                                  Notification.kind == REVIEW_DUE_SOON)
    reviews = list(db.session.scalars(
        sa.select(Review).where(*REVIEW_IS_OPEN, Review.due_at <= now + timedelta(hours=hours), ~announced)
        .options(so.selectinload(Review.package), so.selectinload(Review.script_revision))
        .order_by(Review.due_at, Review.id).limit(DUE_SOON_BATCH)))
    if not reviews:
        return 0
    officers = queries.reviewing_officer_ids()
    count = 0
    for review in reviews:
        package = review.stage == STAGE_PACKAGE and review.package is not None
        title = review.package.title if package else review.script_revision.title
        ids = notify(REVIEW_DUE_SOON, [o for o in officers if o != review.author_id], object_type="review",
                     object_id=review.id,
                     params={"stage": review.stage, "title": title, "due_at": review.due_at.isoformat()})
        count += 1 if ids else 0
    return count
