"""Named permission predicates for accounts."""

from __future__ import annotations


def can_manage_users(user) -> bool:
    """Operations admins manage users and roles."""
    return bool(user and user.is_authenticated and user.has_role("admin"))


def can_read_audit_log(user) -> bool:
    """Compliance officers and admins read the audit trail."""
    return bool(user and user.is_authenticated and user.has_any_role("compliance", "admin"))


def can_edit_own_profile(user) -> bool:
    """Advisors edit the bio and photo of their own profile."""
    return bool(user and user.is_authenticated and user.has_role("advisor") and user.advisor_profile)


def can_view_avatar(user, profile) -> bool:
    """Any signed-in user of the platform may see an advisor's photo (it is shown on content)."""
    return bool(user and user.is_authenticated and profile is not None)


def second_factor_required(user) -> bool:
    """With REQUIRE_2FA on, compliance officers and admins must sign in with a TOTP second factor."""
    from flask import current_app

    return bool(current_app.config.get("REQUIRE_2FA") and user and user.is_authenticated
                and user.has_any_role("compliance", "admin"))


def can_decide_role_request(user, grant) -> bool:
    """Admins see role requests; the service refuses the requester and the target confirming."""
    return bool(user and user.is_authenticated and user.has_role("admin") and grant is not None)
