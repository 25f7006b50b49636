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
