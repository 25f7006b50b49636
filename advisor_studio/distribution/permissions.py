"""Named permission predicates of distribution, used by routes, templates and the API alike."""

from __future__ import annotations


def _is_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.has_role("admin"))


def can_manage_partners(user) -> bool:
    """Operations admins create and edit partners, their webhook settings and members."""
    return _is_admin(user)


def can_manage_channels(user) -> bool:
    """Operations admins add and edit partners' channels."""
    return _is_admin(user)


def can_manage_api_keys(user, partner=None) -> bool:
    """Operations admins issue and revoke partner API keys."""
    return _is_admin(user)
