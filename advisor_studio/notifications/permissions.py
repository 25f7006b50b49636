"""Named permission predicates of notifications."""

from __future__ import annotations


def can_open(user, notification) -> bool:
    """Only its recipient reads (and marks read) a notification; to anyone else it does not exist."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and notification is not None
                and notification.recipient_id == user.id)
