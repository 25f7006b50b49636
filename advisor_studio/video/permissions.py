"""Named permission predicates for uploads and renditions."""

from __future__ import annotations


def can_upload_video(user, package) -> bool:
    """Only the package's author uploads its source video."""
    return bool(user and user.is_authenticated and package is not None and package.author_id == user.id)


def can_view_rendition(user, rendition) -> bool:
    """The author, compliance officers and admins may watch a rendition and follow its progress."""
    if not (user and user.is_authenticated and rendition is not None):
        return False
    return rendition.package.author_id == user.id or user.has_any_role("compliance", "admin")


def can_manage_disclaimer(user) -> bool:
    """Compliance owns the disclaimer text."""
    return bool(user and user.is_authenticated and user.has_role("compliance"))
