"""Named permission predicates for accounts."""

from __future__ import annotations


def can_manage_users(user) -> bool:
    """Operations admins manage users and roles."""
    return bool(user and user.is_authenticated and user.has_role("admin"))


def can_read_audit_log(user) -> bool:
    """Compliance officers and admins read the audit trail."""
    return bool(user and user.is_authenticated and user.has_any_role("compliance", "admin"))
