"""User accounts, their roles and advisor profiles."""

from __future__ import annotations

import functools
import re
import secrets
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context
from flask_login import UserMixin

from advisor_studio.access import ROLES
from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

SAC_NUMBER_RE = re.compile(r"S[0-9]{13}")
EMAIL_MAX = 254
NAME_MAX = 100



@functools.lru_cache(maxsize=4)
def _hasher_for(params: tuple) -> PasswordHasher:
    return PasswordHasher(**dict(params))


def _hasher() -> PasswordHasher:
    """argon2id with the library's recommended parameters (tests may configure cheaper ones)."""
    params = current_app.config.get("PASSWORD_HASH_PARAMS") if has_app_context() else None
    return _hasher_for(tuple(sorted((params or {}).items())))


def is_valid_sac_number(value: str | None) -> bool:
    """True for a SAC registration number: the letter S followed by 13 digits."""
    return bool(value) and SAC_NUMBER_RE.fullmatch(value) is not None


def new_session_token() -> str:
    return secrets.token_urlsafe(16)


class User(UserMixin, db.Model):
    """A person who signs in; may hold several roles."""

    __tablename__ = "users"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(EMAIL_MAX), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(NAME_MAX))
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    # Part of the login cookie; rotating it ends every existing session of this user.
    session_token: so.Mapped[str] = so.mapped_column(sa.String(64), default=new_session_token)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_login_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Set by an admin password reset: until the user picks a new password they can do nothing else.
    must_change_password: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    # The TOTP secret, encrypted (accounts/totp.py); enabled_at stays NULL while enrolment is unconfirmed.
    totp_secret_enc: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    totp_enabled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # The last accepted TOTP time step: a code of this step or an earlier one is a replay.
    totp_last_step: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    # The MCN partner an mcn user works for (admin assigns it); NULL for everyone else.
    partner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)

    role_rows: so.Mapped[list[UserRole]] = so.relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    advisor_profile: so.Mapped[AdvisorProfile | None] = so.relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"

    @property
    def roles(self) -> set[str]:
        return {row.role for row in self.role_rows}

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None and bool(self.totp_secret_enc)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher().hash(password)

    def check_password(self, password: str) -> bool:
        try:
            return _hasher().verify(self.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def password_needs_rehash(self) -> bool:
        return _hasher().check_needs_rehash(self.password_hash)


@functools.lru_cache(maxsize=4)
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(12))


def check_dummy_password(password: str) -> None:
    """Spend the same time as a real check, so unknown emails are not revealed by timing."""
    hasher = _hasher()
    try:
        hasher.verify(_dummy_hash(hasher), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass


class UserRole(db.Model):
    """One role held by one user."""

    __tablename__ = "user_roles"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    role: so.Mapped[str] = so.mapped_column(sa.String(20), primary_key=True)

    user: so.Mapped[User] = so.relationship(back_populates="role_rows")

    __table_args__ = (
        sa.CheckConstraint(sa.column("role").in_(ROLES), name="role_known"),
    )


class AdvisorProfile(db.Model):
    """What an advisor must show on every piece of content: real name and SAC number."""

    __tablename__ = "advisor_profiles"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    real_name: so.Mapped[str] = so.mapped_column(sa.String(NAME_MAX))
    sac_number: so.Mapped[str] = so.mapped_column(sa.String(14), unique=True)
    bio: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    avatar_key: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    avatar_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))

    user: so.Mapped[User] = so.relationship(back_populates="advisor_profile")


ROLE_GRANTED = "granted"
ROLE_REVOKED = "revoked"


class RoleEvent(db.Model):
    """One grant or revocation of a role, kept forever: who held which role when."""

    __tablename__ = "role_events"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    role: so.Mapped[str] = so.mapped_column(sa.String(20))
    action: so.Mapped[str] = so.mapped_column(sa.String(10))
    at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    actor_label: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    # The confirmed request that led to this grant, for compliance and admin roles.
    grant_request_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("role_grant_requests.id"))

    __table_args__ = (
        sa.CheckConstraint(sa.column("action").in_((ROLE_GRANTED, ROLE_REVOKED)), name="action_known"),
    )


GRANT_PENDING = "pending"
GRANT_CONFIRMED = "confirmed"
GRANT_CANCELLED = "cancelled"


class RoleGrantRequest(db.Model):
    """A request by one admin to grant compliance or admin; a second admin confirms it."""

    __tablename__ = "role_grant_requests"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    role: so.Mapped[str] = so.mapped_column(sa.String(20))
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default=GRANT_PENDING, index=True)
    requested_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    requested_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    decided_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    user = so.relationship("User", foreign_keys=[user_id])
    requested_by = so.relationship("User", foreign_keys=[requested_by_id])
    decided_by = so.relationship("User", foreign_keys=[decided_by_id])

    __table_args__ = (
        sa.CheckConstraint(sa.column("status").in_((GRANT_PENDING, GRANT_CONFIRMED, GRANT_CANCELLED)),
                           name="status_known"),
    )


class RecoveryCode(db.Model):
    """One single-use recovery code of a user's second factor, stored as a hash."""

    __tablename__ = "recovery_codes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    code_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # Used, or retired when the factor was disabled or the codes regenerated; never deleted.
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    retired_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


class LoginFailure(db.Model):
    """A refused password sign-in, keyed by a hash of the email (known or not) and of the address."""

    __tablename__ = "login_failures"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    address_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    # Only the first two octets (IPv4) or the /48 (IPv6): enough to tell the user, not to identify anyone.
    address_shown: so.Mapped[str] = so.mapped_column(sa.String(64))
    at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.Index("ix_login_failures_email_at", "email_hash", "at"),)


class SignInAddress(db.Model):
    """An address (hashed) a user has signed in from with every factor: their usual places."""

    __tablename__ = "sign_in_addresses"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    address_hash: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    first_seen_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
