"""Read-side queries of accounts: role history, pending role requests."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from advisor_studio.accounts.models import (
    GRANT_PENDING,
    ROLE_REVOKED,
    RoleEvent,
    RoleGrantRequest,
    User,
    UserRole,
)
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db


def held_admin_recently(user: User, now: datetime | None = None) -> bool:
    """True when the user holds admin now or held it within ADMIN_REVIEW_COOLDOWN_DAYS (from role history)."""
    if user.has_role("admin"):
        return True
    cached = getattr(user, "_held_admin_recently", None)
    if cached is not None:
        return cached
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["ADMIN_REVIEW_COOLDOWN_DAYS"])
    found = db.session.scalar(sa.select(sa.exists().where(
        RoleEvent.user_id == user.id, RoleEvent.role == "admin", RoleEvent.action == ROLE_REVOKED,
        RoleEvent.at > cutoff))) or False
    user._held_admin_recently = found  # one query per request, however often the page asks
    return found


def recent_admin_ids(now: datetime | None = None) -> sa.CompoundSelect:
    """held_admin_recently as SQL: ids of users who hold admin now or revoked it within
    ADMIN_REVIEW_COOLDOWN_DAYS (for "who may decide reviews" over many users in one statement)."""
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["ADMIN_REVIEW_COOLDOWN_DAYS"])
    return sa.union(
        sa.select(UserRole.user_id).where(UserRole.role == "admin"),
        sa.select(RoleEvent.user_id).where(RoleEvent.role == "admin", RoleEvent.action == ROLE_REVOKED,
                                           RoleEvent.at > cutoff))


def pending_grant_requests(user_id: int | None = None) -> list[RoleGrantRequest]:
    """Role requests waiting for a second admin, oldest first (of one user, or all)."""
    stmt = sa.select(RoleGrantRequest).where(RoleGrantRequest.status == GRANT_PENDING).options(
        so.selectinload(RoleGrantRequest.user), so.selectinload(RoleGrantRequest.requested_by))
    if user_id is not None:
        stmt = stmt.where(RoleGrantRequest.user_id == user_id)
    return list(db.session.scalars(stmt.order_by(RoleGrantRequest.requested_at, RoleGrantRequest.id)))


def role_history(user_id: int, limit: int = 50) -> list[RoleEvent]:
    """The user's role grants and revocations, newest first."""
    return list(db.session.scalars(sa.select(RoleEvent).where(RoleEvent.user_id == user_id)
                                   .order_by(RoleEvent.at.desc(), RoleEvent.id.desc()).limit(limit)))
