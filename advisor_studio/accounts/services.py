"""Every state change of accounts: create, edit, roles, activation, sign-in bookkeeping."""

from __future__ import annotations

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.access import ROLES
from advisor_studio.accounts.models import (
    EMAIL_MAX,
    NAME_MAX,
    AdvisorProfile,
    User,
    UserRole,
    check_dummy_password,
    is_valid_sac_number,
    new_session_token,
)
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db

PASSWORD_MIN = 10
PASSWORD_MAX = 128
BIO_MAX = 2000


def _is_self(actor, user: User) -> bool:
    return isinstance(actor, User) and actor.id == user.id


def normalize_email(email: str) -> str:
    """Validate the syntax of an email address and return it lower-cased."""
    email = (email or "").strip()
    if len(email) > EMAIL_MAX:
        raise ValidationError(_("Email is too long."), fields={"email": _("at most %(n)d characters", n=EMAIL_MAX)})
    try:
        result = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(_("Invalid email address."), fields={"email": str(exc)}) from exc
    return result.normalized.lower()


def find_user_by_email(email: str) -> User | None:
    """The user with this email (case-insensitive), or None."""
    return db.session.scalar(sa.select(User).where(User.email == (email or "").strip().lower()))


def _check_password(password: str) -> None:
    if not password or len(password) < PASSWORD_MIN:
        raise ValidationError(
            _("Password must have at least %(n)d characters.", n=PASSWORD_MIN),
            fields={"password": _("too short")},
        )
    if len(password) > PASSWORD_MAX:
        raise ValidationError(
            _("Password must have at most %(n)d characters.", n=PASSWORD_MAX),
            fields={"password": _("too long")},
        )


def _check_name(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("Name is required."), fields={field: _("required")})
    if len(name) > NAME_MAX:
        raise ValidationError(
            _("Name must have at most %(n)d characters.", n=NAME_MAX), fields={field: _("too long")}
        )
    if any(ord(c) < 32 for c in name):
        raise ValidationError(_("Name contains control characters."), fields={field: _("invalid")})
    return name


def _check_roles(roles) -> list[str]:
    roles = sorted(set(roles or []))
    if not roles:
        raise ValidationError(_("Choose at least one role."), fields={"roles": _("required")})
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValidationError(
            _("Unknown role: %(roles)s. Valid roles: %(valid)s.", roles=", ".join(unknown), valid=", ".join(ROLES)),
            fields={"roles": _("unknown role")},
        )
    return roles


def _check_sac(sac_number: str | None, user: User | None = None) -> str:
    sac_number = (sac_number or "").strip().upper()
    if not is_valid_sac_number(sac_number):
        raise ValidationError(
            _("SAC registration number must be the letter S followed by 13 digits."),
            fields={"sac_number": _("format: S + 13 digits")},
        )
    clash = db.session.scalar(sa.select(AdvisorProfile).where(AdvisorProfile.sac_number == sac_number))
    if clash is not None and (user is None or clash.user_id != user.id):
        raise Conflict(
            _("SAC registration number %(sac)s already belongs to another advisor.", sac=sac_number),
            fields={"sac_number": _("already in use")},
        )
    return sac_number


def create_user(*, email: str, password: str, roles, name: str | None = None, sac_number: str | None = None,
                bio: str = "", actor=None) -> User:
    """Create a user with roles; advisors need a valid SAC number (their profile is created too)."""
    email = normalize_email(email)
    roles = _check_roles(roles)
    _check_password(password)
    name = _check_name(name or email.split("@")[0])
    if find_user_by_email(email) is not None:
        raise Conflict(_("A user with email %(email)s already exists.", email=email),
                       fields={"email": _("already in use")})
    sac = None
    if "advisor" in roles:
        sac = _check_sac(sac_number)
    elif sac_number:
        raise ValidationError(_("Only advisors have a SAC registration number."),
                              fields={"sac_number": _("advisors only")})
    if len(bio or "") > BIO_MAX:
        raise ValidationError(_("Bio is too long."), fields={"bio": _("too long")})

    user = User(email=email, name=name, active=True, session_token=new_session_token())
    user.set_password(password)
    user.role_rows = [UserRole(role=r) for r in roles]
    if sac:
        user.advisor_profile = AdvisorProfile(real_name=name, sac_number=sac, bio=bio or "")
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", "user", user.id, actor=actor,
                 details={"email": email, "roles": roles, "sac_number": sac})
    return user


def update_user(user: User, *, name: str, roles, sac_number: str | None = None, real_name: str | None = None,
                bio: str | None = None, actor=None) -> User:
    """Change a user's name, roles and advisor profile; records what changed."""
    name = _check_name(name)
    roles = _check_roles(roles)
    if _is_self(actor, user) and "admin" in user.roles and "admin" not in roles:
        raise ValidationError(_("You cannot remove your own admin role."), fields={"roles": _("own admin role")})
    changes: dict = {}
    if name != user.name:
        changes["name"] = [user.name, name]
        user.name = name
    old_roles = sorted(user.roles)
    if old_roles != roles:
        changes["roles"] = [old_roles, roles]
        user.role_rows = [row for row in user.role_rows if row.role in roles] + [
            UserRole(role=r) for r in roles if r not in old_roles
        ]
    if "advisor" in roles:
        sac = _check_sac(sac_number if sac_number is not None else
                         (user.advisor_profile.sac_number if user.advisor_profile else None), user)
        real = _check_name(real_name if real_name is not None else
                           (user.advisor_profile.real_name if user.advisor_profile else name), "real_name")
        if bio is not None and len(bio) > BIO_MAX:
            raise ValidationError(_("Bio is too long."), fields={"bio": _("too long")})
        profile = user.advisor_profile
        if profile is None:
            user.advisor_profile = AdvisorProfile(real_name=real, sac_number=sac, bio=bio or "")
            changes["advisor_profile"] = {"sac_number": sac, "real_name": real}
        else:
            for attr, value in (("sac_number", sac), ("real_name", real), ("bio", bio)):
                if value is not None and getattr(profile, attr) != value:
                    changes[attr] = [getattr(profile, attr), value] if attr != "bio" else "changed"
                    setattr(profile, attr, value)
    db.session.flush()
    if changes:
        audit.record("user.updated", "user", user.id, actor=actor, details=changes)
    return user


def set_active(user: User, active: bool, *, actor=None, reason: str = "") -> User:
    """Activate or deactivate a user; deactivation ends all of the user's sessions."""
    if user.active == active:
        return user
    if not active and _is_self(actor, user):
        raise ValidationError(_("You cannot deactivate your own account."))
    if not active and not (reason or "").strip():
        raise ValidationError(_("A reason is required to deactivate a user."), fields={"reason": _("required")})
    user.active = active
    user.session_token = new_session_token()
    db.session.flush()
    audit.record("user.deactivated" if not active else "user.reactivated", "user", user.id, actor=actor,
                 details={"reason": (reason or "").strip()[:500]})
    return user


def change_password(user: User, new_password: str, *, actor=None) -> User:
    """Set a new password and end the user's other sessions."""
    _check_password(new_password)
    user.set_password(new_password)
    user.session_token = new_session_token()
    db.session.flush()
    audit.record("user.password_changed", "user", user.id, actor=actor)
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None; the same cost whether or not the email exists."""
    user = find_user_by_email(email)
    if user is None:
        check_dummy_password(password or "")
        return None
    if not user.check_password(password or ""):
        return None
    if user.password_needs_rehash():  # parameters were raised since this hash was made
        user.set_password(password)
    return user


def record_login(user: User) -> None:
    """Note a successful sign-in in the user row and the audit trail."""
    user.last_login_at = utcnow()
    db.session.flush()
    audit.record("user.login", "user", user.id, actor=user)


def record_logout(user: User) -> None:
    """Note a sign-out in the audit trail (the session ends in the view)."""
    audit.record("user.logout", "user", user.id, actor=user)


def record_failed_login(email: str, reason: str) -> None:
    """Audit a refused sign-in without revealing which part was wrong to the visitor."""
    audit.record("user.login_failed", "user", "-", actor=None,
                 details={"email": (email or "")[:EMAIL_MAX], "reason": reason})


AVATAR_MAX_BYTES = 5 * 1024 * 1024
AVATAR_SIZE = 512


def update_own_profile(user: User, *, bio: str, avatar_stream=None, actor=None) -> User:
    """An advisor edits their bio and avatar; name and SAC number stay with the admins."""
    profile = user.advisor_profile
    if profile is None:
        raise ValidationError(_("Only advisors have a profile page."))
    bio = (bio or "").strip()
    if len(bio) > BIO_MAX:
        raise ValidationError(_("Bio is too long."), fields={"bio": _("too long")})
    changes = {}
    if bio != profile.bio:
        profile.bio = bio
        changes["bio"] = "changed"
    if avatar_stream is not None:
        stored = _store_avatar(avatar_stream)
        changes["avatar"] = [profile.avatar_sha256, stored.sha256]
        profile.avatar_key, profile.avatar_sha256 = stored.key, stored.sha256
    db.session.flush()
    if changes:
        audit.record("advisor.profile_updated", "user", user.id, actor=actor, details=changes)
    return user


def _store_avatar(stream):
    """Decode the upload as an image (never trusting its name), square it and store a clean JPEG."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    from advisor_studio import storage

    raw = stream.read(AVATAR_MAX_BYTES + 1)
    if len(raw) > AVATAR_MAX_BYTES:
        raise ValidationError(_("The photo must be at most 5 MB."), fields={"avatar": _("too large")})
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.width * img.height > 40_000_000:  # refuse decompression bombs before decoding
                raise ValidationError(_("The photo has too many pixels."), fields={"avatar": _("too large")})
            img = ImageOps.exif_transpose(img).convert("RGB")
            img = ImageOps.fit(img, (AVATAR_SIZE, AVATAR_SIZE))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=88)  # re-encoding also drops EXIF data such as GPS
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValidationError(_("The file is not a readable image (JPEG, PNG or WebP)."),
                              fields={"avatar": _("not an image")}) from exc
    out.seek(0)
    return storage.get_storage().put_stream(out, storage.new_key("avatars", ".jpg"), "image/jpeg")
