"""Named permission predicates for integrity pages."""

from __future__ import annotations


def can_manage_integrity(user) -> bool:
    """Compliance officers read integrity results, start a re-verification and resolve alerts."""
    return bool(user and user.is_authenticated and user.has_role("compliance"))
