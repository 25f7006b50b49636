"""Read side of notifications: the bell's count, the list page, who gets what."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from advisor_studio.accounts.models import User, UserRole
from advisor_studio.accounts.queries import recent_admin_ids
from advisor_studio.extensions import db
from advisor_studio.notifications.models import Notification, NotificationSetting


def unread_count(user_id: int) -> int:
    """How many notifications of the user are unread (one COUNT on the partial unread index)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
        Notification.recipient_id == user_id, Notification.read_at.is_(None))) or 0


def notifications_page(user_id: int, *, page: int, per_page: int):
    """One page of the user's notifications, newest first: the page's ids from the (recipient_id, id)
    index alone, then those rows (three statements: ids, their total, rows).

    Asked for whole rows at once, PostgreSQL may instead walk the primary key backwards and filter out
    everyone else's notifications, which for a user whose notifications are old reads the whole table
    (53 ms instead of under 1 at 200,000 rows, benchmarks/bench_notifications.py).
    """
    ids = (sa.select(Notification.id).where(Notification.recipient_id == user_id)
           .order_by(Notification.id.desc()))
    result = db.paginate(ids, page=page, per_page=per_page, error_out=False)
    if result.items:
        rows = {n.id: n for n in db.session.scalars(sa.select(Notification).where(Notification.id.in_(result.items)))}
        result.items = [rows[i] for i in result.items]
    return result


def email_enabled(user_id: int) -> bool:
    """The user's e-mail preference (on unless they turned it off)."""
    value = db.session.scalar(sa.select(NotificationSetting.email_enabled)
                              .where(NotificationSetting.user_id == user_id))
    return True if value is None else bool(value)


def mail_configured() -> bool:
    """E-mail is sent only when an SMTP server is configured."""
    return bool(current_app.config.get("MAIL_SERVER"))


def reviewing_officer_ids(exclude_user_id: int | None = None) -> list[int]:
    """Active compliance officers who may claim and decide reviews (compliance.permissions.can_decide
    without the review: no admin now or within ADMIN_REVIEW_COOLDOWN_DAYS), in one statement.
    ``exclude_user_id`` is the author, who may not review their own work (four-eyes)."""
    stmt = (sa.select(User.id).join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == "compliance", User.active.is_(True), User.id.not_in(recent_admin_ids()))
            .order_by(User.id))
    if exclude_user_id is not None:
        stmt = stmt.where(User.id != exclude_user_id)
    return list(db.session.scalars(stmt))


def email_batch(notification_ids: list[int]) -> list[tuple[Notification, User]]:
    """The notifications among ``ids`` still to be e-mailed, with their recipients, skipping inactive
    users and those who turned e-mail off (read when sending, so a late opt-out still counts)."""
    opted_out = sa.select(NotificationSetting.user_id).where(NotificationSetting.email_enabled.is_(False))
    stmt = (sa.select(Notification, User).join(User, User.id == Notification.recipient_id)
            .where(Notification.id.in_(notification_ids), Notification.emailed_at.is_(None),
                   User.active.is_(True), User.id.not_in(opted_out))
            .order_by(Notification.id))
    return [(row[0], row[1]) for row in db.session.execute(stmt)]


def summary(user_id: int) -> tuple[int, int | None]:
    """(unread count, id of the newest notification) of the user, in one statement of two subqueries,
    each answered by its own index (a single aggregate with FILTER would read every row of the user)."""
    mine = Notification.recipient_id == user_id
    unread = (sa.select(sa.func.count()).select_from(Notification).where(mine, Notification.read_at.is_(None))
              .scalar_subquery())
    newest = sa.select(sa.func.max(Notification.id)).where(mine).scalar_subquery()
    row = db.session.execute(sa.select(unread, newest)).one()
    return int(row[0] or 0), row[1]
