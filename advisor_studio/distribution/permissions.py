"""Named permission predicates of distribution, used by the portal views, templates and the API alike."""

from __future__ import annotations

from advisor_studio.distribution.models import ASSET_ENDED_STATUSES, ASSET_LIVE_STATUSES

# Roles that see where any package went (compliance answers for it, operations runs the partners).
DISTRIBUTION_READER_ROLES = ("compliance", "admin")


def _signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def is_partner_user(user) -> bool:
    """An mcn user linked to a partner: the only kind of user the portal shows assets to."""
    return _signed_in(user) and user.has_role("mcn") and user.partner_id is not None


def _own_asset(user, assignment) -> bool:
    return is_partner_user(user) and assignment is not None and user.partner_id == assignment.partner_id


def can_view_asset(user, assignment) -> bool:
    """The asset's partner sees it; admins may also look. Nobody else, whatever their role."""
    if assignment is None or not _signed_in(user):
        return False
    return _own_asset(user, assignment) or user.has_role("admin")


def can_download_asset(user, assignment) -> bool:
    """The partner plays and downloads a live asset; an ended one is not handed out any more."""
    return _own_asset(user, assignment) and assignment.status in ASSET_LIVE_STATUSES


def can_report_publication(user, assignment) -> bool:
    """The partner reports posts of a live asset (the service checks the approval again)."""
    return _own_asset(user, assignment) and assignment.status in ASSET_LIVE_STATUSES


def can_confirm_takedown(user, assignment) -> bool:
    """The partner confirms posts of a withdrawn or expired asset removed."""
    return _own_asset(user, assignment) and assignment.status in ASSET_ENDED_STATUSES


def can_view_package_distribution(user, package) -> bool:
    """Compliance, admins and the package's author see where a package went and what was taken down."""
    if package is None or not _signed_in(user):
        return False
    return user.has_any_role(*DISTRIBUTION_READER_ROLES) or package.author_id == user.id


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
