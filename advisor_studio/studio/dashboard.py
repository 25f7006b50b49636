"""What the studio feature shows on the landing page of a signed-in user."""

from __future__ import annotations


def landing_data(user) -> dict:
    """Counts and items for the landing page section of this feature (empty when none apply)."""
    return {}
