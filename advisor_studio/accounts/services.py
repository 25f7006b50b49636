"""Every state change of accounts: create, edit, roles, activation, second factor, sign-in bookkeeping."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.access import ROLES
from advisor_studio.accounts import passwords, totp
from advisor_studio.accounts.models import (
    EMAIL_MAX,
    GRANT_CANCELLED,
    GRANT_CONFIRMED,
    GRANT_PENDING,
    NAME_MAX,
    ROLE_GRANTED,
    ROLE_REVOKED,
    AdvisorProfile,
    LoginFailure,
    RecoveryCode,
    RoleEvent,
    RoleGrantRequest,
    SignInAddress,
    User,
    UserRole,
    check_dummy_password,
    is_valid_sac_number,
    new_session_token,
)
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError, ValidationErrors
from advisor_studio.extensions import db

PASSWORD_MIN = passwords.MIN_LENGTH
PASSWORD_MAX = passwords.MAX_LENGTH
BIO_MAX = 2000
# Granting these takes two admins: one requests, a different one (not the target) confirms.
SENSITIVE_ROLES = ("compliance", "admin")
FACTOR_PASSWORD = "password"  # noqa: S105 - the name of a factor, not a secret
FACTOR_TOTP = "totp"
FACTOR_RECOVERY_CODE = "recovery_code"
FACTORS = (FACTOR_PASSWORD, FACTOR_TOTP, FACTOR_RECOVERY_CODE)


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


def _check_password(password: str, *, email: str | None = None, name: str | None = None,
                    field: str = "password", old: User | None = None) -> None:
    why = passwords.problem(password, email, name)
    if why == passwords.TOO_SHORT:
        raise ValidationError(
            _("Password must have at least %(n)d characters.", n=PASSWORD_MIN),
            fields={field: _("too short")},
        )
    if why == passwords.TOO_LONG:
        raise ValidationError(
            _("Password must have at most %(n)d characters.", n=PASSWORD_MAX),
            fields={field: _("too long")},
        )
    if why == passwords.PERSONAL:
        raise ValidationError(
            _("The password must not contain the email name or the person's name."),
            fields={field: _("contains a personal word")}, code="password_personal",
        )
    if why == passwords.GUESSABLE:
        raise ValidationError(
            _("This password is too common or too easy to guess. Use a longer phrase of unrelated words."),
            fields={field: _("too easy to guess")}, code="password_guessable",
        )
    if old is not None and old.check_password(password):
        raise ValidationError(_("The new password must differ from the current one."),
                              fields={field: _("same as before")})


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
    if not sac_number:
        raise ValidationError(_("Advisors need a SAC registration number."),
                              fields={"sac_number": _("required")}, code="sac_required")
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


def _check_unused_email(email: str) -> None:
    if find_user_by_email(email) is not None:
        raise Conflict(_("A user with email %(email)s already exists.", email=email),
                       fields={"email": _("already in use")})


def _check_bio(bio: str | None) -> None:
    if len(bio or "") > BIO_MAX:
        raise ValidationError(_("Bio is too long."), fields={"bio": _("too long")})


# ``partner_id`` of create_user / update_user when the caller does not manage partner membership
# (the CLI, seed-demo, tests of other features); the admin user form always passes it.
PARTNER_NOT_GIVEN = object()


def _check_partner(roles: list[str], partner_id, user: User | None = None):
    """The partner an mcn user must belong to (None for other roles); refuses a partner for others."""
    from advisor_studio.distribution.models import Partner

    if "mcn" in roles:
        if partner_id is None:
            raise ValidationError(
                _("An MCN partner user must belong to a partner: choose it (create the partner first if it "
                  "is not in the list)."), fields={"partner_id": _("required")}, code="partner_required")
        partner = db.session.get(Partner, partner_id)
        if partner is None:
            raise ValidationError(_("This partner does not exist."), fields={"partner_id": _("unknown partner")})
        return partner
    # Without the mcn role the user belongs to no partner. The partner they had when the mcn role goes
    # is let go quietly; naming a new one is a mistake worth saying.
    if partner_id is not None and (user is None or partner_id != user.partner_id):
        raise ValidationError(_("Only users holding the MCN partner role can belong to a partner."),
                              fields={"partner_id": _("not an mcn user")}, code="not_mcn_user")
    return None


class _Checks:
    """Runs every check of a form and keeps each failure, so one answer names all of them."""

    def __init__(self) -> None:
        self.errors: list = []

    def run(self, check, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except (ValidationError, Conflict) as err:
            self.errors.append(err)
            return None

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ValidationErrors(self.errors)


def check_new_user(*, email: str, password: str, roles, name: str | None = None, sac_number: str | None = None,
                   bio: str | None = "", partner_id=PARTNER_NOT_GIVEN) -> dict:
    """Every check of a new user at once: the cleaned values, or one error naming each problem."""
    checks = _Checks()
    clean_email = checks.run(normalize_email, email)
    clean_roles = checks.run(_check_roles, roles)
    clean_name = None
    if name or clean_email:  # without a name the email's local part is used; a bad email is reported once
        clean_name = checks.run(_check_name, name or clean_email.split("@")[0])
    checks.run(_check_password, password, email=clean_email or email, name=clean_name or name)
    if clean_email:
        checks.run(_check_unused_email, clean_email)
    sac = None
    if clean_roles and "advisor" in clean_roles:
        sac = checks.run(_check_sac, sac_number)
    elif sac_number:
        checks.errors.append(ValidationError(_("Only advisors have a SAC registration number."),
                                             fields={"sac_number": _("advisors only")}))
    checks.run(_check_bio, bio)
    partner = None
    if partner_id is not PARTNER_NOT_GIVEN and clean_roles is not None:
        partner = checks.run(_check_partner, clean_roles, partner_id)
    checks.raise_any()
    return {"email": clean_email, "roles": clean_roles, "name": clean_name, "sac": sac, "partner": partner}


def create_user(*, email: str, password: str, roles, name: str | None = None, sac_number: str | None = None,
                bio: str | None = "", actor=None, partner_id=PARTNER_NOT_GIVEN) -> User:
    """Create a user with roles; advisors need a valid SAC number (their profile is created too), and
    when ``partner_id`` is given an mcn user joins that partner. Every problem is reported at once."""
    clean = check_new_user(email=email, password=password, roles=roles, name=name, sac_number=sac_number,
                           bio=bio, partner_id=partner_id)
    email, roles, name, sac = clean["email"], clean["roles"], clean["name"], clean["sac"]

    # An admin on the web only requests compliance and admin; operator bootstrap (`flask users create`,
    # seed-demo) has no second admin to ask and grants directly.
    requested = [r for r in roles if r in SENSITIVE_ROLES] if isinstance(actor, User) else []
    direct = [r for r in roles if r not in requested]
    user = User(email=email, name=name, active=True, session_token=new_session_token())
    user.set_password(password)
    user.role_rows = [UserRole(role=r) for r in direct]
    if sac:
        user.advisor_profile = AdvisorProfile(real_name=name, sac_number=sac, bio=bio or "")
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", "user", user.id, actor=actor,
                 details={"email": email, "roles": direct, "sac_number": sac})
    for role in direct:
        _role_event(user, role, ROLE_GRANTED, actor)
    for role in requested:
        request_role_grant(user, role, actor=actor)
    if clean["partner"] is not None:
        from advisor_studio.distribution import services as distribution

        distribution.set_user_partner(user, clean["partner"], actor=actor)
    return user


def _role_event(user: User, role: str, action: str, actor, grant_request: RoleGrantRequest | None = None) -> None:
    actor_id = actor.id if isinstance(actor, User) else None
    label = actor.email if isinstance(actor, User) else (actor or "system")
    db.session.add(RoleEvent(user_id=user.id, role=role, action=action, at=utcnow(), actor_id=actor_id,
                             actor_label=label, grant_request_id=grant_request.id if grant_request else None))


def request_role_grant(user: User, role: str, *, actor) -> RoleGrantRequest:
    """Admin A asks to grant compliance or admin; the role is not held until another admin confirms."""
    if role not in SENSITIVE_ROLES:
        raise ValidationError(_("Only compliance and admin roles need a second admin's confirmation."))
    if _is_self(actor, user):
        raise PermissionDenied(_("You cannot grant a role to yourself."), code="self_grant")
    pending = db.session.scalar(sa.select(RoleGrantRequest).where(
        RoleGrantRequest.user_id == user.id, RoleGrantRequest.role == role,
        RoleGrantRequest.status == GRANT_PENDING))
    if pending is not None or user.has_role(role):
        return pending
    grant = RoleGrantRequest(user_id=user.id, role=role, status=GRANT_PENDING, requested_by_id=actor.id,
                             requested_at=utcnow())
    db.session.add(grant)
    db.session.flush()
    audit.record("role.grant_requested", "user", user.id, actor=actor,
                 details={"role": role, "request_id": grant.id})
    return grant


def _close_grant(grant: RoleGrantRequest, status: str, actor: User) -> None:
    # Compare-and-set: of two admins acting at once, one wins and the other gets a clear 409.
    result = db.session.execute(
        sa.update(RoleGrantRequest)
        .where(RoleGrantRequest.id == grant.id, RoleGrantRequest.status == GRANT_PENDING)
        .values(status=status, decided_by_id=actor.id, decided_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict(_("This role request was already confirmed or cancelled."), code="grant_closed")
    db.session.refresh(grant)


def confirm_role_grant(grant: RoleGrantRequest, *, actor: User) -> RoleGrantRequest:
    """Admin B (not the requester, not the target) confirms: the role is granted now."""
    if not isinstance(actor, User) or not actor.has_role("admin"):
        raise PermissionDenied(_("Only admins confirm role requests."))
    if actor.id == grant.requested_by_id:
        raise PermissionDenied(_("A different admin must confirm a role request you made."),
                               code="same_admin")
    if actor.id == grant.user_id:
        raise PermissionDenied(_("You cannot grant a role to yourself."), code="self_grant")
    _close_grant(grant, GRANT_CONFIRMED, actor)
    user = db.session.get(User, grant.user_id)
    if not user.has_role(grant.role):
        user.role_rows.append(UserRole(role=grant.role))
        _role_event(user, grant.role, ROLE_GRANTED, actor, grant)
    db.session.flush()
    audit.record("role.grant_confirmed", "user", user.id, actor=actor,
                 details={"role": grant.role, "request_id": grant.id, "requested_by": grant.requested_by_id})
    return grant


def cancel_role_grant(grant: RoleGrantRequest, *, actor: User) -> RoleGrantRequest:
    """An admin withdraws a pending role request; the role is never granted."""
    _close_grant(grant, GRANT_CANCELLED, actor)
    audit.record("role.grant_cancelled", "user", grant.user_id, actor=actor,
                 details={"role": grant.role, "request_id": grant.id})
    return grant


def record_refused_role_change(user: User, *, actor, roles, reason: str) -> None:
    """Audit a refused role change (self-grant); the caller commits it after rolling back the change."""
    audit.record("role.change_refused", "user", user.id, actor=actor,
                 details={"roles": sorted(set(roles or [])), "reason": reason})


def check_user_update(user: User, *, name: str, roles, sac_number: str | None = None,
                      real_name: str | None = None, bio: str | None = None, actor=None,
                      partner_id=PARTNER_NOT_GIVEN) -> dict:
    """Every check of a change to ``user`` at once: the cleaned values, or one error naming each problem.

    Granting oneself a role is refused outright (PermissionDenied), not listed with the others.
    """
    checks = _Checks()
    name = checks.run(_check_name, name)
    clean_roles = checks.run(_check_roles, roles)
    if clean_roles is not None:
        if _is_self(actor, user) and "admin" in user.roles and "admin" not in clean_roles:
            checks.errors.append(ValidationError(_("You cannot remove your own admin role."),
                                                 fields={"roles": _("own admin role")}))
        elif _is_self(actor, user) and any(r not in user.roles for r in clean_roles):
            raise PermissionDenied(_("You cannot grant a role to yourself."), fields={"roles": _("own roles")},
                                   code="self_grant")
    profile = user.advisor_profile
    sac = real = None
    if clean_roles is not None and "advisor" in clean_roles:
        sac = checks.run(_check_sac, sac_number if sac_number is not None else
                         (profile.sac_number if profile else None), user)
        real = checks.run(_check_name, real_name if real_name is not None else
                          (profile.real_name if profile else name or user.name), "real_name")
        checks.run(_check_bio, bio)
    partner = None
    if partner_id is not PARTNER_NOT_GIVEN and clean_roles is not None:
        partner = checks.run(_check_partner, clean_roles, partner_id, user)
    checks.raise_any()
    return {"name": name, "roles": clean_roles, "sac": sac, "real_name": real, "partner": partner}


def update_user(user: User, *, name: str, roles, sac_number: str | None = None, real_name: str | None = None,
                bio: str | None = None, actor=None, partner_id=PARTNER_NOT_GIVEN) -> User:
    """Change a user's name, roles, advisor profile and (when ``partner_id`` is given) partner; records
    what changed. Every problem with the values is reported at once, before anything changes."""
    clean = check_user_update(user, name=name, roles=roles, sac_number=sac_number, real_name=real_name, bio=bio,
                              actor=actor, partner_id=partner_id)
    name, sac, real, partner, profile = (clean["name"], clean["sac"], clean["real_name"], clean["partner"],
                                         user.advisor_profile)
    roles = clean["roles"]
    old_roles = sorted(user.roles)
    added = [r for r in roles if r not in old_roles]
    changes: dict = {}
    if name != user.name:
        changes["name"] = [user.name, name]
        user.name = name
    requested = [r for r in added if r in SENSITIVE_ROLES] if isinstance(actor, User) else []
    granted = [r for r in added if r not in requested]
    removed = [r for r in old_roles if r not in roles]
    if granted or removed:
        new_roles = sorted(set(old_roles) - set(removed) | set(granted))
        changes["roles"] = [old_roles, new_roles]
        user.role_rows = [row for row in user.role_rows if row.role not in removed] + [
            UserRole(role=r) for r in granted
        ]
        for role in granted:
            _role_event(user, role, ROLE_GRANTED, actor)
        for role in removed:
            _role_event(user, role, ROLE_REVOKED, actor)
    for role in requested:
        request_role_grant(user, role, actor=actor)
    if requested:
        changes["roles_requested"] = requested
    if "advisor" in roles:
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
    if partner_id is not PARTNER_NOT_GIVEN and (partner is not None or user.partner_id is not None):
        from advisor_studio.distribution import services as distribution

        distribution.set_user_partner(user, partner, actor=actor)  # audited there; a no-op when unchanged
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
    """Set a new password (policy-checked, different from the old) and end the user's other sessions."""
    _check_password(new_password, email=user.email, name=user.name, field="new_password", old=user)
    user.set_password(new_password)
    user.session_token = new_session_token()
    user.must_change_password = False
    db.session.flush()
    audit.record("user.password_changed", "user", user.id, actor=actor)
    return user


def _generated_password() -> str:
    # Four groups from an unambiguous alphabet: about 80 bits, and easy to read out over the phone.
    return "-".join(totp.new_recovery_codes(2)).upper()


def reset_password(user: User, *, actor: User, password: str | None = None) -> str | None:
    """An admin sets a temporary password (or gets a generated one, returned once); the user must
    change it at next sign-in, and every session of the user ends now."""
    if _is_self(actor, user):
        raise ValidationError(_("Change your own password on your account page."))
    generated = None
    if password:
        _check_password(password, email=user.email, name=user.name)
    else:
        password = generated = _generated_password()
    user.set_password(password)
    user.must_change_password = True
    user.session_token = new_session_token()
    db.session.flush()
    audit.record("user.password_reset", "user", user.id, actor=actor, details={"generated": generated is not None})
    return generated


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


def _master_key() -> str:
    return current_app.config.get("TOTP_ENCRYPTION_KEY") or current_app.config["SECRET_KEY"]


def _email_hash(email: str) -> str:
    return totp.keyed_hash((email or "").strip().lower(), current_app.config["SECRET_KEY"], b"login-email v1")


def _address_hash(address: str) -> str:
    return totp.keyed_hash(address or "", current_app.config["SECRET_KEY"], b"login-address v1")


def shown_address(address: str) -> str:
    """An address truncated for display and storage: A.B.x.x for IPv4, the /48 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 4:
        a, b, _c, _d = str(ip).split(".")
        return f"{a}.{b}.x.x"
    network = ipaddress.ip_network(f"{ip}/48", strict=False)
    return str(network)


def is_usual_address(user: User | None, address: str) -> bool:
    """True when the user once completed sign-in (every factor) from this address."""
    if user is None:
        return False
    return db.session.get(SignInAddress, (user.id, _address_hash(address))) is not None


def login_backoff_seconds(email: str, address: str, now: datetime | None = None) -> int:
    """Seconds this address must wait before trying this email again, 0 when it may try now.

    Failures from many addresses in the last hour slow down every address the user never signed in
    from, exponentially past LOGIN_BACKOFF_THRESHOLD and never beyond LOGIN_BACKOFF_MAX_SECONDS, so a
    guesser cannot lock the user out: their usual addresses are never delayed. The same rule applies to
    unknown emails, so the delay does not reveal which accounts exist.
    """
    cfg = current_app.config
    now = now or utcnow()
    user = find_user_by_email(email)
    if is_usual_address(user, address):
        return 0
    count, last = db.session.execute(
        sa.select(sa.func.count(LoginFailure.id), sa.func.max(LoginFailure.at))
        .where(LoginFailure.email_hash == _email_hash(email), LoginFailure.at > now - timedelta(hours=1))).one()
    threshold = cfg["LOGIN_BACKOFF_THRESHOLD"]
    if count < threshold or last is None:
        return 0
    if last.tzinfo is None:  # max() of a UTCDateTime column comes back naive on some backends
        last = last.replace(tzinfo=UTC)
    delay = min(2 ** min(count - threshold, 20), cfg["LOGIN_BACKOFF_MAX_SECONDS"])
    remaining = (last + timedelta(seconds=delay) - now).total_seconds()
    return max(0, int(remaining + 0.999))


def record_login(user: User, *, address: str = "", factor: str = FACTOR_PASSWORD) -> dict | None:
    """Note a completed sign-in; return the failed attempts since the previous one to tell the user."""
    now = utcnow()
    since = user.last_login_at or user.created_at
    failures = db.session.execute(
        sa.select(sa.func.count(LoginFailure.id), sa.func.max(LoginFailure.id))
        .where(LoginFailure.email_hash == _email_hash(user.email), LoginFailure.at > since)).one()
    report = None
    if failures[0]:
        last = db.session.get(LoginFailure, failures[1])
        report = {"count": failures[0], "last_at": last.at, "last_address": last.address_shown}
    user.last_login_at = now
    known = db.session.get(SignInAddress, (user.id, _address_hash(address)))
    if known is None:
        db.session.add(SignInAddress(user_id=user.id, address_hash=_address_hash(address), first_seen_at=now,
                                     last_seen_at=now))
    else:
        known.last_seen_at = now
    db.session.flush()
    audit.record("user.login", "user", user.id, actor=user, details={"factor": factor})
    if report:
        audit.record("user.failed_logins_reported", "user", user.id, actor=user,
                     details={"count": report["count"], "last_at": report["last_at"].isoformat(),
                              "last_address": report["last_address"]})
    return report


def record_logout(user: User) -> None:
    """Note a sign-out in the audit trail (the session ends in the view)."""
    audit.record("user.logout", "user", user.id, actor=user)


def record_failed_login(email: str, reason: str, address: str | None = None) -> None:
    """Audit a refused sign-in (and count it for back-off) without telling the visitor which part was wrong."""
    if address is not None:
        db.session.add(LoginFailure(email_hash=_email_hash(email), address_hash=_address_hash(address),
                                    address_shown=shown_address(address), at=utcnow()))
        db.session.flush()
    audit.record("user.login_failed", "user", "-", actor=None,
                 details={"email": (email or "")[:EMAIL_MAX], "reason": reason,
                          "address": shown_address(address) if address is not None else None})


# --- second factor (TOTP) -------------------------------------------------------------------


def totp_secret(user: User) -> str | None:
    """The user's TOTP secret in clear (enrolled or pending), or None."""
    if not user.totp_secret_enc:
        return None
    return totp.decrypt_secret(user.totp_secret_enc, _master_key())


def begin_totp_enrolment(user: User) -> str:
    """Start (or restart) enrolment with a fresh secret; nothing changes at sign-in until it is confirmed."""
    if user.totp_enabled:
        raise Conflict(_("A second factor is already set up. Disable it first to set up a new one."),
                       code="totp_enabled")
    secret = totp.new_secret()
    user.totp_secret_enc = totp.encrypt_secret(secret, _master_key())
    user.totp_last_step = None
    db.session.flush()
    audit.record("user.totp_enrolment_started", "user", user.id, actor=user)
    return secret


def _accept_totp(user: User, code: str) -> bool:
    secret = totp_secret(user)
    if secret is None:
        return False
    step = totp.matching_step(secret, code, user.totp_last_step)
    if step is None:
        return False
    # Compare-and-set on the step, so two requests carrying the same code cannot both pass.
    result = db.session.execute(
        sa.update(User).where(User.id == user.id,
                              sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    user.totp_last_step = step
    return True


def confirm_totp_enrolment(user: User, code: str) -> list[str]:
    """Turn the factor on after a valid code; return the 10 recovery codes, shown once and stored hashed."""
    if user.totp_enabled:
        raise Conflict(_("A second factor is already set up."), code="totp_enabled")
    if not user.totp_secret_enc:
        raise Conflict(_("Start the set-up again: no enrolment is in progress."), code="no_enrolment")
    if not _accept_totp(user, code):
        raise ValidationError(_("That code is not valid. Enter the 6-digit code your app shows now."),
                              fields={"code": _("invalid code")})
    user.totp_enabled_at = utcnow()
    codes = _replace_recovery_codes(user)
    db.session.flush()
    audit.record("user.totp_enabled", "user", user.id, actor=user)
    return codes


def _replace_recovery_codes(user: User) -> list[str]:
    now = utcnow()
    db.session.execute(sa.update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None),
                                                     RecoveryCode.retired_at.is_(None)).values(retired_at=now))
    codes = totp.new_recovery_codes()
    key = _master_key()
    for code in codes:
        db.session.add(RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(code, key), created_at=now))
    return codes


def _use_recovery_code(user: User, code: str) -> bool:
    if len(totp.normalize_recovery_code(code)) != 10:
        return False
    digest = totp.hash_recovery_code(code, _master_key())
    result = db.session.execute(
        sa.update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == digest,
                                      RecoveryCode.used_at.is_(None), RecoveryCode.retired_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    audit.record("user.recovery_code_used", "user", user.id, actor=user)
    return True


def verify_totp(user: User, code: str) -> bool:
    """True for a fresh valid TOTP code of an enrolled user; a replayed code is refused."""
    return user.totp_enabled and _accept_totp(user, code)


def verify_second_factor(user: User, code: str) -> str | None:
    """The factor that ``code`` proves (totp, or a single-use recovery code), or None."""
    if not user.totp_enabled:
        return None
    if verify_totp(user, code):
        return FACTOR_TOTP
    if _use_recovery_code(user, code):
        return FACTOR_RECOVERY_CODE
    return None


def remaining_recovery_codes(user: User) -> int:
    """How many unused recovery codes the user still has."""
    return db.session.scalar(sa.select(sa.func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None), RecoveryCode.retired_at.is_(None)))


def disable_totp(user: User, *, password: str, code: str, required: bool) -> User:
    """Turn the factor off with the password and a code; refused while policy requires it for the user."""
    if not user.totp_enabled:
        raise Conflict(_("No second factor is set up."), code="totp_disabled")
    if required:
        raise PermissionDenied(_("Your role requires a second factor; it cannot be turned off."),
                               code="totp_required")
    if not user.check_password(password or ""):
        raise ValidationError(_("Current password is incorrect."), fields={"password": _("incorrect")})
    if verify_second_factor(user, code) is None:
        raise ValidationError(_("That code is not valid."), fields={"code": _("invalid code")})
    user.totp_secret_enc = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(sa.update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None),
                                                     RecoveryCode.retired_at.is_(None)).values(retired_at=utcnow()))
    user.session_token = new_session_token()
    db.session.flush()
    audit.record("user.totp_disabled", "user", user.id, actor=user)
    return user


def record_reauthentication(user: User, factor: str | None, *, ok: bool) -> None:
    """Audit a step-up confirmation attempt (the factor when it succeeded)."""
    audit.record("user.reauthenticated" if ok else "user.reauth_failed", "user", user.id, actor=user,
                 details={"factor": factor})


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
