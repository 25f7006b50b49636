"""Named permission predicates of referrals (groups and links), used by routes and templates alike.

Advisors see and manage only their own groups and links (others' answer 404, as if they did not
exist), admins all; compliance may read links; MCN partners nothing.
"""

from __future__ import annotations


def _signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def is_admin(user) -> bool:
    """Admins manage every group and link."""
    return _signed_in(user) and user.has_role("admin")


def can_view_group(user, group) -> bool:
    """The owning advisor and admins."""
    return _signed_in(user) and group is not None and (is_admin(user) or group.owner_id == user.id)


def can_manage_group(user, group) -> bool:
    """Edit and archive: the owning advisor and admins."""
    return can_view_group(user, group)


def can_view_link(user, link) -> bool:
    """The owning advisor, admins and compliance (read-only)."""
    return _signed_in(user) and link is not None and (
        is_admin(user) or user.has_role("compliance") or link.owner_id == user.id)


def can_manage_link(user, link) -> bool:
    """Enable, disable, replace and print: the owning advisor and admins."""
    return _signed_in(user) and link is not None and (is_admin(user) or link.owner_id == user.id)


def can_create_links(user) -> bool:
    """Advisors create links of their own."""
    return _signed_in(user) and user.has_role("advisor")
