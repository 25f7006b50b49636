"""Named permission predicates for scripts and packages, used by routes and templates alike."""

from __future__ import annotations

# Roles that read every advisor's content (compliance reviews it, operations oversees it).
READER_ROLES = ("compliance", "admin")


def _signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def _is_author(user, obj) -> bool:
    return _signed_in(user) and obj is not None and obj.author_id == user.id


def can_write_scripts(user) -> bool:
    """Advisors with a SAC registration number write scripts."""
    return _signed_in(user) and user.has_role("advisor") and user.advisor_profile is not None


def can_view_script(user, script) -> bool:
    """The author, compliance officers and admins read a script, its revisions and reviews."""
    return _is_author(user, script) or (_signed_in(user) and script is not None
                                        and user.has_any_role(*READER_ROLES))


def can_edit_script(user, script) -> bool:
    """Only the author (still an advisor) saves, submits, recalls or archives a script."""
    return _is_author(user, script) and user.has_role("advisor")


def can_view_package(user, package) -> bool:
    """The author, compliance officers and admins read a package and its reviews."""
    return _is_author(user, package) or (_signed_in(user) and package is not None
                                         and user.has_any_role(*READER_ROLES))


def can_edit_package(user, package) -> bool:
    """Only the author (still an advisor) changes, submits, recalls or archives a package."""
    return _is_author(user, package) and user.has_role("advisor")


def can_download_approved_master(user, package) -> bool:
    """The package's advisor (still an advisor), compliance officers and admins save its approved master."""
    return can_edit_package(user, package) or (_signed_in(user) and package is not None
                                               and user.has_any_role(*READER_ROLES))
