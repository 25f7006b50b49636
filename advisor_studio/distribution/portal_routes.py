"""portal views of the distribution blueprint (see routes.py)."""

from __future__ import annotations

from advisor_studio.distribution.routes import bp  # noqa: F401
