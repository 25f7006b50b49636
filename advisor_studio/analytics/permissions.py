"""Named permission predicates of analytics, used by routes, queries and templates alike.

Advisors see only their own numbers (the query layer scopes every query to them); compliance and
admins see everyone's. Fraud flags are reviewed by compliance; reconciliation uploads are an admin's.
MCN partners see none of it.
"""

from __future__ import annotations


def _signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def sees_everyone(user) -> bool:
    """Compliance and admins see every advisor's figures."""
    return _signed_in(user) and (user.has_role("compliance") or user.has_role("admin"))


def can_view_analytics(user) -> bool:
    """Funnels, rankings, AARRR and content performance: advisors (their own), compliance, admins."""
    return _signed_in(user) and (sees_everyone(user) or user.has_role("advisor"))


def advisor_scope(user) -> int | None:
    """The advisor whose figures alone the user may see, or None for everyone's.

    Fail closed: a user who may not see analytics at all gets a scope no row matches.
    """
    if sees_everyone(user):
        return None
    if can_view_analytics(user):
        return user.id
    return -1


def can_review_fraud(user) -> bool:
    """List fraud flags and confirm or clear them: compliance officers."""
    return _signed_in(user) and user.has_role("compliance")


def can_reconcile(user) -> bool:
    """Upload an account-opening system's CSV and read the reconciliation: admins."""
    return _signed_in(user) and user.has_role("admin")
